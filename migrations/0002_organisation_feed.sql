CREATE TABLE `organisation_tombstones` (
	`identifier` text PRIMARY KEY NOT NULL,
	`removed_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `organisation_tombstones_removed_at` ON `organisation_tombstones` (`removed_at`);--> statement-breakpoint
ALTER TABLE `organisations` ADD `updated_at` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `organisations_updated_at` ON `organisations` (`updated_at`);