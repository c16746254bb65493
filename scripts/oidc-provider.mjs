// A local OpenID Provider (the certified `oidc-provider` package) on loopback, for `npm run dev`,
// `npm run test:browser` and `npm test`: its users are the seeded members (same emails, same password),
// its login page is its own. `tsx scripts/oidc-provider.mjs --port 8789 --redirect-uri <gateway>/authenticate/sso/callback`
// runs it and prints `[oidc] ready: <issuer>`; the tests start it in-process with `testControls` (below).
import { createServer } from "node:http";
import Provider from "oidc-provider";
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK } from "jose";
import { LOCAL_SSO_CLIENT, SEED_MEMBERS, SEED_PASSWORD } from "./seed-data.ts";

/** A subject per email, stable across restarts (as an IdP's `sub` is). */
function subjectOf(email) {
  let hash = 0x811c9dc5;
  for (const char of email) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  return `user-${hash.toString(36)}`;
}

/** A new RS256 signing key, its private JWK and its kid. */
async function signingKey() {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: `k-${crypto.randomUUID().slice(0, 8)}`, alg: "RS256", use: "sig" };
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, { email = "", error = "" } = {}) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Local identity provider: sign in</title></head>
<body><h1>Local identity provider</h1><p>Sign in as a seeded member (password <code>${SEED_PASSWORD}</code>).</p>
${error ? `<p id="error" role="alert">${escapeHtml(error)}</p>` : ""}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>Email <input name="login" type="email" value="${escapeHtml(email)}" autofocus required></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit" id="sign-in">Sign in</button></form></body></html>`;
}

async function formBody(request) {
  let text = "";
  for await (const chunk of request) text += chunk;
  return new URLSearchParams(text);
}

async function jsonBody(request) {
  let text = "";
  for await (const chunk of request) text += chunk;
  return text ? JSON.parse(text) : {};
}

/** The client id of a token request authenticated with client_secret_basic, if any. */
function basicClientId(request) {
  const header = request.headers.authorization ?? "";
  if (!header.startsWith("Basic ")) return undefined;
  const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
  return decodeURIComponent(decoded.slice(0, decoded.indexOf(":")));
}

/**
 * Starts the provider on `host:port` (0: a free port). `clients`: `{id, secret, redirectUris}`. `emails`: the
 * accounts (default: the seeded members); with `anyEmail` every email signs in with the seed password (tests).
 * `testControls` adds `POST /__test/…` routes that rotate the signing key or change the next token response of a
 * client (see `control` below). Resolves to `{issuer, close()}`.
 */
export async function startOidcProvider({
  port = 0,
  host = "127.0.0.1",
  clients = [],
  emails = [...new Set(SEED_MEMBERS.map((member) => member.email))],
  anyEmail = false,
  testControls = false,
  log = () => {},
} = {}) {
  const accounts = new Set(emails);
  /** Subject → email of the accounts that signed in (the provider's `sub` is the account id). */
  const emailOf = new Map([...accounts].map((email) => [subjectOf(email), email]));
  let keys = [await signingKey()];
  /** Per client id: what to do to its next token response (tests only). */
  const nextToken = new Map();
  const secrets = new Map(clients.map((client) => [client.id, client.secret]));
  let provider;
  let issuer;

  function build() {
    const built = new Provider(issuer, {
      clients: clients.map((client) => ({
        client_id: client.id,
        client_secret: client.secret,
        redirect_uris: client.redirectUris,
        response_types: ["code"],
        grant_types: ["authorization_code"],
        token_endpoint_auth_method: "client_secret_basic",
      })),
      jwks: { keys },
      cookies: { keys: ["local-oidc-provider-cookie-key-not-secret"] },
      scopes: ["openid", "email"],
      claims: { openid: ["sub"], email: ["email", "email_verified"] },
      conformIdTokenClaims: false,
      ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3600, IdToken: 600, Interaction: 600, Session: 3600 },
      pkce: { required: () => true },
      responseTypes: ["code"],
      features: { devInteractions: { enabled: false } },
      // HS256 too, as Auth0 and Keycloak offer: the relying party must refuse it itself
      enabledJWA: { idTokenSigningAlgValues: ["RS256", "PS256", "ES256", "Ed25519", "EdDSA", "HS256"] },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      findAccount: (_ctx, id) => {
        const email = emailOf.get(id);
        return email === undefined
          ? undefined
          : { accountId: id, claims: () => ({ sub: id, email, email_verified: true }) };
      },
      // first-party clients only: the grant is given with the login, no consent page
      loadExistingGrant: async (ctx) => {
        const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
        if (grantId) return ctx.oidc.provider.Grant.find(grantId);
        const grant = new ctx.oidc.provider.Grant({
          clientId: ctx.oidc.client.clientId,
          accountId: ctx.oidc.session.accountId,
        });
        grant.addOIDCScope("openid email");
        await grant.save();
        return grant;
      },
      renderError: (ctx, out) => {
        ctx.type = "html";
        ctx.body = `<!doctype html><title>Error</title><h1>${escapeHtml(out.error)}</h1><p>${escapeHtml(out.error_description ?? "")}</p>`;
      },
    });
    built.on("server_error", (_ctx, error) => log(`server_error: ${error.message}`));
    if (testControls) built.use(tamperTokenResponses);
    return built;
  }

  /** Tests: the next token response of a client, changed as asked (claims replaced, re-signed, or never answered). */
  async function tamperTokenResponses(ctx, next) {
    const clientId = ctx.method === "POST" && ctx.path === "/token" ? basicClientId(ctx.req) : undefined;
    const change = clientId === undefined ? undefined : nextToken.get(clientId);
    if (change === undefined) return next();
    nextToken.delete(clientId);
    if (change.hang) return new Promise(() => {});
    await next();
    if (ctx.status !== 200 || typeof ctx.body?.id_token !== "string") return;
    const claims = { ...decodeJwt(ctx.body.id_token), ...change.claims };
    for (const [name, value] of Object.entries(claims)) if (value === null) delete claims[name];
    ctx.body = { ...ctx.body, id_token: await resign(claims, change.sign, clientId) };
  }

  async function resign(claims, how = "current", clientId) {
    if (how === "none") {
      const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
      return `${encode({ alg: "none", typ: "JWT" })}.${encode(claims)}.`;
    }
    if (how === "hs256-client-secret") {
      return new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: keys[0].kid })
        .sign(new TextEncoder().encode(secrets.get(clientId)));
    }
    if (how === "published-kid-other-key") {
      const other = await signingKey();
      return new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", kid: keys[0].kid })
        .sign(await importJWK(other, "RS256"));
    }
    const jwk = how === "unknown-key" ? await signingKey() : keys[0];
    return new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: jwk.kid }).sign(await importJWK(jwk, "RS256"));
  }

  /** `POST /__test/next-token {client, claims?, sign?, hang?}` and `POST /__test/rotate` (tests only). */
  async function control(request, response) {
    const body = await jsonBody(request);
    const url = new URL(request.url, issuer);
    if (url.pathname === "/__test/rotate") {
      keys = [await signingKey(), ...keys].slice(0, 2);
      provider = build();
      response.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ kid: keys[0].kid }));
      return;
    }
    if (url.pathname === "/__test/next-token" && typeof body.client === "string") {
      nextToken.set(body.client, body);
      response.writeHead(204).end();
      return;
    }
    response.writeHead(404).end();
  }

  async function interaction(request, response, uid, action) {
    const headers = { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" };
    const details = await provider.interactionDetails(request, response);
    if (action === undefined && request.method === "GET") {
      const hint = details.params.login_hint;
      response.writeHead(200, headers).end(loginPage(uid, { email: typeof hint === "string" ? hint : "" }));
      return;
    }
    if (action === "login" && request.method === "POST") {
      const form = await formBody(request);
      const email = (form.get("login") ?? "").trim().toLowerCase();
      if ((accounts.has(email) || anyEmail) && form.get("password") === SEED_PASSWORD) {
        emailOf.set(subjectOf(email), email);
        await provider.interactionFinished(
          request,
          response,
          { login: { accountId: subjectOf(email) } },
          {
            mergeWithLastSubmission: false,
          },
        );
        return;
      }
      response.writeHead(200, headers).end(loginPage(uid, { email, error: "Unknown email or wrong password." }));
      return;
    }
    response.writeHead(405, headers).end();
  }

  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://provider").pathname;
    const match = /^\/interaction\/([^/]+)(?:\/(login))?$/.exec(path);
    const handled = path.startsWith("/__test/")
      ? testControls
        ? control(request, response)
        : Promise.resolve(response.writeHead(404).end())
      : match
        ? interaction(request, response, match[1], match[2])
        : Promise.resolve(provider.callback()(request, response));
    handled.catch((error) => {
      log(`error: ${error.message}`);
      if (!response.headersSent) response.writeHead(400, { "Content-Type": "text/plain" });
      response.end(`${error.message}\n`);
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  issuer = `http://${host}:${server.address().port}`;
  provider = build();
  return {
    issuer,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Command line: `--port N` (default 8789) and one `--redirect-uri` per gateway callback; the local client. */
if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const option = (name) => args.flatMap((arg, i) => (arg === `--${name}` ? [args[i + 1]] : []));
  const redirectUris = option("redirect-uri");
  const { issuer } = await startOidcProvider({
    port: Number(option("port")[0] ?? 8789),
    clients: [{ ...LOCAL_SSO_CLIENT, redirectUris }],
    log: (line) => console.log(`[oidc] ${line}`),
  });
  console.log(`[oidc] ready: ${issuer} (client ${LOCAL_SSO_CLIENT.id}, redirect URIs ${redirectUris.join(", ")})`);
}
