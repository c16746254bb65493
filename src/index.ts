/** Gridgate's Worker entry: the handler (`worker.ts`) and the Durable Object classes it binds. */
import { createWorker } from "./worker";

export { AuditSink } from "./audit/sink";
export { LoginBackoff } from "./credentials/login-backoff";
export { RefreshFamily } from "./tokens/refresh-family";
export { Revocations } from "./revocation/record";

export default createWorker();
