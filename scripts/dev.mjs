// `npm run dev`: local secrets, migrated and seeded local D1, then the demo origin (127.0.0.1:8788), the gateway
// (127.0.0.1:8787) and the local OpenID Provider (127.0.0.1:8789) as process groups that live and die together, and
// the demo web app on http://127.0.0.1:5173 (served from this process). A change to .dev.vars restarts both workers
// with the new values (wrangler dev itself reads .dev.vars only when it starts).
import {
  DEV_CORS_ORIGINS,
  gatewayWorker,
  originWorker,
  prepareLocal,
  prepareSecrets,
  readTextOrNull,
  ROOT,
  serveWebApp,
  startOidcProvider,
  startWorker,
  stopGroups,
  waitForOk,
  watchFileContent,
} from "./lib/dev-stack.mjs";

const GATEWAY_PORT = 8787;
const OIDC_PORT = 8789;
const OIDC_ISSUER = `http://127.0.0.1:${OIDC_PORT}`;
const WEB_APP_PORT = 5173;
const DEV_VARS = `${ROOT}.dev.vars`;
const log = (message) => console.log(`[dev] ${message}`);

let children = [];
let webApp;
let provider;
let stopWatching;
let stopping = false;
/** Counts worker starts: exits and readiness of workers from an earlier start are ignored. */
let generation = 0;
/** The .dev.vars text and values the running workers were started with. */
let running = { text: null, vars: {} };

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  process.exitCode = code;
  stopWatching?.();
  webApp?.close();
  await stopGroups(provider ? [...children, provider] : children);
  process.exit(process.exitCode);
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (!stopping) log(`${signal}: stopping the gateway, the demo origin, the OpenID Provider and the web app`);
    stop(0);
  });
}

/** Starts both workers with `vars` (the .dev.vars values). */
function startWorkers(vars) {
  running = { text: readTextOrNull(DEV_VARS), vars };
  const current = ++generation;
  // Browser apps: .dev.vars decides (see .dev.vars.example); an older .dev.vars without the line gets the dev default.
  const gatewayVars = vars.CORS_ORIGINS === undefined ? { CORS_ORIGINS: DEV_CORS_ORIGINS } : {};
  const callbacks = {
    onLine: (worker, line) => console.log(`[${worker.name}] ${line}`),
    onExit: (worker, code, signal) => {
      if (stopping || current !== generation) return;
      console.error(`[dev] ${worker.name} stopped (${signal ?? `exit ${code}`}); stopping the rest`);
      stop(code ?? 1);
    },
  };
  children = [
    startWorker(originWorker({ port: 8788, inspector: 9230 }), callbacks),
    startWorker(gatewayWorker({ port: GATEWAY_PORT, inspector: 9229, vars: gatewayVars }), callbacks),
  ];
  return current;
}

async function announceWhenReady(current) {
  const ready = await waitForOk(`http://127.0.0.1:${GATEWAY_PORT}/health`, {
    cancelled: () => stopping || current !== generation,
  });
  if (ready && current === generation) {
    log(
      `ready: gateway http://127.0.0.1:${GATEWAY_PORT}, demo origin http://127.0.0.1:8788, web app http://127.0.0.1:${WEB_APP_PORT}, OpenID Provider ${OIDC_ISSUER} (Ctrl-C stops them all)`,
    );
  }
}

let restarting;
let restartAgain = false;

/** Stops both workers and starts them again from the current .dev.vars; one more round if it changes meanwhile. */
async function restart() {
  if (restarting) {
    restartAgain = true;
    return;
  }
  restarting = (async () => {
    do {
      restartAgain = false;
      const previous = running.vars;
      log(".dev.vars changed: restarting the gateway and the demo origin");
      generation++;
      await stopGroups(children);
      children = [];
      if (stopping) return;
      try {
        const current = startWorkers(prepareSecrets({ log }));
        if (running.vars.PASSWORD_PEPPER !== previous.PASSWORD_PEPPER) {
          log("PASSWORD_PEPPER changed: the seeded accounts keep their old hashes; to log in with them, stop,");
          log("delete .wrangler/state and start again");
        }
        announceWhenReady(current);
      } catch (error) {
        console.error(`[dev] ${error.message}; the workers stay stopped until .dev.vars changes again`);
      }
    } while (restartAgain && !stopping);
  })();
  await restarting;
  restarting = undefined;
}

let first;
try {
  first = startWorkers(prepareLocal({ log, ssoIssuer: OIDC_ISSUER }));
} catch (error) {
  console.error(`[dev] ${error.message}`);
  process.exit(1);
}
provider = startOidcProvider(
  {
    port: OIDC_PORT,
    redirectUris: [
      `http://127.0.0.1:${GATEWAY_PORT}/authenticate/sso/callback`,
      `http://localhost:${GATEWAY_PORT}/authenticate/sso/callback`,
    ],
  },
  {
    onLine: (worker, line) => console.log(`[${worker.name}] ${line}`),
    onExit: (worker, code, signal) => {
      if (stopping) return;
      console.error(`[dev] ${worker.name} stopped (${signal ?? `exit ${code}`}); stopping the rest`);
      stop(code ?? 1);
    },
  },
);
stopWatching = watchFileContent(DEV_VARS, (text) => {
  if (text !== running.text) restart();
});
try {
  webApp = await serveWebApp({ port: WEB_APP_PORT, gateway: `http://127.0.0.1:${GATEWAY_PORT}` });
} catch (error) {
  console.error(`[dev] the web app could not listen on 127.0.0.1:${WEB_APP_PORT} (${error.message}); stopping`);
  await stop(1);
}
await announceWhenReady(first);
