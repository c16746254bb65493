// `npm run dev`: local secrets, migrated and seeded local D1, then the demo origin (127.0.0.1:8788)
// and the gateway (127.0.0.1:8787) as two `wrangler dev` process groups that live and die together,
// and the demo web app on http://127.0.0.1:5173 (served from this process).
import {
  DEV_CORS_ORIGINS,
  gatewayWorker,
  originWorker,
  prepareLocal,
  serveWebApp,
  startWorker,
  stopGroups,
  waitForOk,
} from "./lib/dev-stack.mjs";

const GATEWAY_PORT = 8787;
const WEB_APP_PORT = 5173;
const log = (message) => console.log(`[dev] ${message}`);

const children = [];
let webApp;
let stopping = false;

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  process.exitCode = code;
  webApp?.close();
  await stopGroups(children);
  process.exit(process.exitCode);
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (!stopping) log(`${signal}: stopping the gateway, the demo origin and the web app`);
    stop(0);
  });
}

let vars;
try {
  vars = prepareLocal({ log });
} catch (error) {
  console.error(`[dev] ${error.message}`);
  process.exit(1);
}
// Browser apps: .dev.vars decides (see .dev.vars.example); an older .dev.vars without the line gets the dev default.
const gatewayVars = vars.CORS_ORIGINS === undefined ? { CORS_ORIGINS: DEV_CORS_ORIGINS } : {};
const callbacks = {
  onLine: (worker, line) => console.log(`[${worker.name}] ${line}`),
  onExit: (worker, code, signal) => {
    if (!stopping) console.error(`[dev] ${worker.name} stopped (${signal ?? `exit ${code}`}); stopping the rest`);
    stop(code ?? 1);
  },
};
children.push(startWorker(originWorker({ port: 8788, inspector: 9230 }), callbacks));
children.push(startWorker(gatewayWorker({ port: GATEWAY_PORT, inspector: 9229, vars: gatewayVars }), callbacks));
try {
  webApp = await serveWebApp({ port: WEB_APP_PORT, gateway: `http://127.0.0.1:${GATEWAY_PORT}` });
} catch (error) {
  console.error(`[dev] the web app could not listen on 127.0.0.1:${WEB_APP_PORT} (${error.message}); stopping`);
  await stop(1);
}
if (await waitForOk(`http://127.0.0.1:${GATEWAY_PORT}/health`, { cancelled: () => stopping })) {
  log(
    `ready: gateway http://127.0.0.1:${GATEWAY_PORT}, demo origin http://127.0.0.1:8788, web app http://127.0.0.1:${WEB_APP_PORT} (Ctrl-C stops all three)`,
  );
}
