// vitest globalSetup (runs in Node, before the workers start): a real OpenID Provider on loopback for the SSO tests
// (scripts/oidc-provider.mjs, with its test controls), a server that accepts connections and never answers, and a
// port nobody listens on. Their URLs reach the tests through `inject("oidc")`.
import { createServer } from "node:net";
import { startOidcProvider } from "../scripts/oidc-provider.mjs";

/** The gateway's callback as the tests address it (test/helpers.ts GATEWAY). */
const REDIRECT_URI = "https://gateway.test/authenticate/sso/callback";

/** One client per test file that drives the provider, so their test controls never meet. */
export const TEST_CLIENTS = {
  sso: { id: "gridgate-test", secret: "gridgate-test-client-secret-0123456789abcdef" },
  openapi: { id: "gridgate-openapi", secret: "gridgate-openapi-client-secret-0123456789abc" },
};

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server.address().port));
  });
}

export default async function setup({ provide }) {
  const provider = await startOidcProvider({
    clients: Object.values(TEST_CLIENTS).map((client) => ({ ...client, redirectUris: [REDIRECT_URI] })),
    anyEmail: true,
    testControls: true,
  });
  const held = new Set();
  const hanging = createServer((socket) => {
    held.add(socket);
    socket.on("close", () => held.delete(socket));
  });
  const hangingPort = await listen(hanging);
  const closed = createServer();
  const downPort = await listen(closed);
  await new Promise((resolve) => closed.close(resolve));
  provide("oidc", {
    issuer: provider.issuer,
    hangingIssuer: `http://127.0.0.1:${hangingPort}`,
    downIssuer: `http://127.0.0.1:${downPort}`,
    clients: TEST_CLIENTS,
  });
  return async () => {
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => hanging.close(resolve));
    await provider.close();
  };
}
