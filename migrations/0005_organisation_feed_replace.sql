-- Custom SQL migration (drizzle-kit generates no triggers): the plan gate's change feed (src/policy/plan.ts) also
-- learns of organisations removed by `INSERT OR REPLACE` (or `REPLACE`). SQLite deletes the rows a replacing insert
-- conflicts with (same `id`, `identifier` or `domain`: the unique columns) without firing delete triggers, so
-- before the insert every such row whose identifier differs from the new one is tombstoned, as
-- organisations_feed_delete would. The same rows get `updated_at` stamped with the same time, so when the insert
-- does not remove them after all (`INSERT OR IGNORE`, an upsert) the feed lists their unchanged state after the
-- tombstone, and isolates keep serving them. An insert that fails on a constraint is rolled back whole, tombstone
-- included. The clock is migration 0003's.
CREATE TRIGGER `organisations_feed_replace` BEFORE INSERT ON `organisations`
BEGIN
  INSERT OR REPLACE INTO `organisation_tombstones` (`identifier`, `removed_at`)
    SELECT `identifier`, CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER) FROM `organisations`
    WHERE (`id` = NEW.`id` OR `identifier` = NEW.`identifier` OR `domain` = NEW.`domain`)
      AND `identifier` IS NOT NEW.`identifier`;
  UPDATE `organisations` SET `updated_at` = CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)
    WHERE (`id` = NEW.`id` OR `identifier` = NEW.`identifier` OR `domain` = NEW.`domain`)
      AND `identifier` IS NOT NEW.`identifier`;
END;
