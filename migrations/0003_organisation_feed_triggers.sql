-- Custom SQL migration (drizzle-kit generates no triggers): the plan gate's organisation change feed
-- (src/policy/plan.ts). D1 stamps `updated_at` (ms since the epoch, its own clock) on every insert and every
-- change of identifier, plan or status, and records identifiers that stop naming an organisation in
-- `organisation_tombstones`, so changes made outside the gateway (admin commands, direct SQL) reach every
-- isolate too. The clock is julianday('now') in ms, which every SQLite version has (unixepoch('subsec') needs
-- 3.42). Tombstones older than a day are pruned when the next one is written.
UPDATE `organisations` SET `updated_at` = CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER);
--> statement-breakpoint
CREATE TRIGGER `organisations_feed_insert` AFTER INSERT ON `organisations`
BEGIN
  UPDATE `organisations` SET `updated_at` = CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)
    WHERE `id` = NEW.`id`;
END;
--> statement-breakpoint
CREATE TRIGGER `organisations_feed_update` AFTER UPDATE OF `identifier`, `plan`, `status` ON `organisations`
BEGIN
  UPDATE `organisations` SET `updated_at` = CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)
    WHERE `id` = NEW.`id`;
  INSERT OR REPLACE INTO `organisation_tombstones` (`identifier`, `removed_at`)
    SELECT OLD.`identifier`, CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)
    WHERE OLD.`identifier` IS NOT NEW.`identifier`;
END;
--> statement-breakpoint
CREATE TRIGGER `organisations_feed_delete` AFTER DELETE ON `organisations`
BEGIN
  INSERT OR REPLACE INTO `organisation_tombstones` (`identifier`, `removed_at`)
    VALUES (OLD.`identifier`, CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER));
  DELETE FROM `organisation_tombstones`
    WHERE `removed_at` < CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER) - 86400000;
END;
