/** A Durable Object's SQLite tables: created when the object starts, and again after it deletes all of its storage. */

/**
 * The object's tables under one schema (`CREATE TABLE IF NOT EXISTS …`). `deleteAll()` drops the tables
 * with the rest of the storage, and the same instance may serve requests after it (an alarm that forgets
 * an expired record, then a new request before the instance is evicted): so the schema is applied when
 * the object starts and again on the first query after every {@link ObjectTables.deleteAll}.
 */
export class ObjectTables {
  private ready = true;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly schema: string,
  ) {
    storage.sql.exec(schema);
  }

  /** Runs `query` (the schema first, when the tables may be missing) and returns its rows. */
  query<Row extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): Row[] {
    if (!this.ready) {
      this.storage.sql.exec(this.schema);
      this.ready = true;
    }
    return this.storage.sql.exec<Row>(query, ...bindings).toArray();
  }

  /** Deletes all of the object's storage (tables, rows, alarm); the next query recreates the tables. */
  async deleteAll(): Promise<void> {
    this.ready = false;
    await this.storage.deleteAll();
  }
}
