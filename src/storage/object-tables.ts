/** A Durable Object's SQLite tables: created when the object starts, and again after it deletes all of its storage. */

/** Tables under one `CREATE TABLE IF NOT EXISTS` schema; the same instance may serve queries after `deleteAll`. */
export class ObjectTables {
  private ready = true;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly schema: string,
  ) {
    storage.sql.exec(schema);
  }

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
