/** Gridgate: the Worker entry point; see `app.ts` for the request's path (parse → verify → plan → scope → forward). */
import { createApp } from "./app";

export default createApp();
