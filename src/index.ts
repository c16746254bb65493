/** Gridgate: the Worker entry point; see `app.ts` for the request's path (parse → verify → plan → limit → scope → forward). */
import { createApp } from "./app";

export { AuditSink } from "./durable/audit-sink";
export { LoginBackoff } from "./durable/login-backoff";
export { RefreshFamily } from "./durable/refresh-family";
export { Revocations } from "./durable/revocations";

export default createApp();
