// Probe: which hop-by-hop request headers does workerd show a Worker over real HTTP/1.1?
// Run: node_modules/.bin/node scripts/probe-connection.mjs   (offline; see docs/forwarding.md § Connection)
// Sends one raw request with `Connection: x-secret-hop` and prints the headers the Worker saw.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unstable_dev } from "wrangler";

const dir = mkdtempSync(join(tmpdir(), "probe-connection-"));
const script = join(dir, "echo.mjs");
writeFileSync(script, "export default { fetch: (request) => Response.json(Object.fromEntries(request.headers)) };\n");
const worker = await unstable_dev(script, {
  compatibilityDate: "2026-11-01",
  ip: "127.0.0.1",
  logLevel: "error",
  experimental: { disableExperimentalWarning: true },
});
const url = new URL(`http://${worker.address}:${worker.port}`);
try {
  const raw = [
    "GET /probe HTTP/1.1",
    `Host: ${url.host}`,
    "Connection: keep-alive, x-secret-hop",
    "X-Secret-Hop: leak",
    "Keep-Alive: timeout=5",
    "TE: trailers",
    "Upgrade: probe/1",
    "Proxy-Connection: keep-alive",
    "X-Ordinary: kept",
    "",
    "",
  ].join("\r\n");
  const response = await new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end(raw));
    let text = "";
    socket.on("data", (chunk) => (text += chunk));
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
  });
  const seen = JSON.parse(
    response.slice(response.indexOf("\r\n\r\n") + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, ""),
  );
  for (const name of ["connection", "x-secret-hop", "keep-alive", "te", "upgrade", "proxy-connection", "x-ordinary"])
    console.log(`${name.padEnd(17)} ${name in seen ? `visible: ${JSON.stringify(seen[name])}` : "not visible"}`);
} finally {
  await worker.stop();
  rmSync(dir, { recursive: true, force: true });
}
