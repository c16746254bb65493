/** Gridgate: the Worker entry point; see `app.ts` for the request's path (parse → verify → plan → limit → scope → forward). */
import { createApp } from "./app";

export default createApp();
