// `npm run dev`: local secrets, migrated and seeded local D1, then the demo origin (127.0.0.1:8788),
// the gateway (127.0.0.1:8787) and the local OpenID Provider (127.0.0.1:8789) as process groups that live
// and die together, and the demo web app on http://127.0.0.1:5173 (served from this process).
import {
  DEV_CORS_ORIGINS,
  gatewayWorker,
  originWorker,
  prepareLocal,
  serveWebApp,
  startOidcProvider,
  startWorker,
  stopGroups,
  waitForOk,
} from "./lib/dev-stack.mjs";

const GATEWAY_PORT = 8787;
const OIDC_PORT = 8789;
const OIDC_ISSUER = `http://127.0.0.1:${OIDC_PORT}`;
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
    if (!stopping) log(`${signal}: stopping the gateway, the demo origin, the OpenID Provider and the web app`);
    stop(0);
  });
}

let vars;
try {
  vars = prepareLocal({ log, ssoIssuer: OIDC_ISSUER });
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
children.push(
  startOidcProvider(
    {
      port: OIDC_PORT,
      redirectUris: [
        `http://127.0.0.1:${GATEWAY_PORT}/authenticate/sso/callback`,
        `http://localhost:${GATEWAY_PORT}/authenticate/sso/callback`,
      ],
    },
    callbacks,
  ),
);
try {
  webApp = await serveWebApp({ port: WEB_APP_PORT, gateway: `http://127.0.0.1:${GATEWAY_PORT}` });
} catch (error) {
  console.error(`[dev] the web app could not listen on 127.0.0.1:${WEB_APP_PORT} (${error.message}); stopping`);
  await stop(1);
}
if (await waitForOk(`http://127.0.0.1:${GATEWAY_PORT}/health`, { cancelled: () => stopping })) {
  log(
    `ready: gateway http://127.0.0.1:${GATEWAY_PORT}, demo origin http://127.0.0.1:8788, web app http://127.0.0.1:${WEB_APP_PORT}, OpenID Provider ${OIDC_ISSUER} (Ctrl-C stops them all)`,
  );
}
