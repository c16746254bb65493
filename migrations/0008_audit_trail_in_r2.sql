-- The audit trail lives in R2 (docs/operating.md § Audit trail). A database that holds audit rows exports them first:
-- npx wrangler d1 export <database> --remote --env <name> --table audit_events --output audit_events.sql
DROP TABLE `audit_events`;