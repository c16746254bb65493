import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";

it("health", async () => {
  const res = await exports.default.fetch("https://gw.test/health");
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ status: "ok" });
});

it("login", async () => {
  const res = await exports.default.fetch("https://gw.test/authenticate", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "architect@acme.example", password: "gridgate-dev-password" }) });
  console.log(res.status, await res.text());
});
