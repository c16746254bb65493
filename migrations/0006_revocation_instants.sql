ALTER TABLE `organisations` ADD `sessions_revoked_at` integer;--> statement-breakpoint
-- A password change used to end sessions through `password_changed_at` (seconds): sessions created before that
-- second began were refused. The same verdicts as one instant in `sessions_revoked_at` (ms), which now decides.
UPDATE `members` SET `sessions_revoked_at` = max(coalesce(`sessions_revoked_at`, 0), `password_changed_at` * 1000 - 1);
