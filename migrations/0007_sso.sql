CREATE TABLE `sso_connections` (
	`organisation_id` integer PRIMARY KEY NOT NULL,
	`issuer` text NOT NULL,
	`client_id` text NOT NULL,
	`client_secret` text NOT NULL,
	`required` integer DEFAULT false NOT NULL,
	`created_at` integer DEFAULT (unixepoch()) NOT NULL,
	`updated_at` integer DEFAULT (unixepoch()) NOT NULL,
	FOREIGN KEY (`organisation_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `sso_domains` (
	`domain` text PRIMARY KEY NOT NULL,
	`organisation_id` integer NOT NULL,
	FOREIGN KEY (`organisation_id`) REFERENCES `sso_connections`(`organisation_id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `sso_domains_organisation` ON `sso_domains` (`organisation_id`);--> statement-breakpoint
CREATE TABLE `sso_states` (
	`state_hash` text PRIMARY KEY NOT NULL,
	`organisation_id` integer NOT NULL,
	`browser_hash` text NOT NULL,
	`nonce` text NOT NULL,
	`code_verifier` text NOT NULL,
	`redirect_uri` text NOT NULL,
	`return_to` text NOT NULL,
	`expires_at` integer NOT NULL,
	FOREIGN KEY (`organisation_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `sso_states_expires_at` ON `sso_states` (`expires_at`);--> statement-breakpoint
ALTER TABLE `members` ADD `sso_issuer` text;--> statement-breakpoint
ALTER TABLE `members` ADD `sso_subject` text;--> statement-breakpoint
CREATE UNIQUE INDEX `members_sso_identity` ON `members` (`organisation_id`,`sso_issuer`,`sso_subject`);