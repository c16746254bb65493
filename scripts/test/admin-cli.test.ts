// `npm run admin` (scripts/admin/cli.ts) in Node against a stand-in gateway: argument handling, the signed request
// each command sends, how answers and refusals print, exit statuses, and where the secret and URL come from.
import "../admin/node-base64";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_SIGNATURE_HEADER, verifyAdminRequest } from "../../src/admin/signature";
import { closestCommand, importBatches, parseSince, runAdmin, usage } from "../admin/cli";
import { parseImport } from "../admin/csv";

const LOCAL_SECRET = "local-admin-secret-0123456789abcdef0123456789";
const STAGING_SECRET = "staging-admin-secret-0123456789abcdef012345678";
const BCRYPT = "$2b$10$o4Q9CP5iotWXYFpH/3g01.MoWGb5fVem3YOeuAjHf9ACql66qyTba";
let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "gridgate-admin-"));
  writeFileSync(join(root, ".dev.vars"), `JWT_SECRET=x\nADMIN_SECRET="${LOCAL_SECRET}"\n`);
  mkdirSync(join(root, ".secrets"));
  writeFileSync(join(root, ".secrets/staging.env"), `ADMIN_SECRET=${STAGING_SECRET}\n`);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** One request the stand-in gateway received, its signature checked against `secret`. */
interface Received {
  url: string;
  route: string;
  body: Record<string, any>;
  signed: boolean;
  userAgent: string | null;
}

type Answer = { status?: number; body: unknown };

/**
 * Runs the CLI with `argv` against a stand-in gateway answering each route with `answers[route]` (a function of the
 * body, or a fixed answer); `fetchError` makes the gateway unreachable instead.
 */
async function run(
  argv: string[],
  options: {
    answers?: Record<string, Answer | ((body: Record<string, any>) => Answer)>;
    env?: Record<string, string>;
    stdin?: string;
    secret?: string;
    fetchError?: Error;
  } = {},
) {
  const received: Received[] = [];
  const out: string[] = [];
  const err: string[] = [];
  const stand_in = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    if (options.fetchError) throw options.fetchError;
    const url = String(input);
    const path = new URL(url).pathname;
    const text = String(init!.body);
    const headers = new Headers(init!.headers);
    const signed =
      (await verifyAdminRequest(
        options.secret ?? LOCAL_SECRET,
        headers.get(ADMIN_SIGNATURE_HEADER),
        path,
        text,
        Math.floor(Date.now() / 1000),
      )) !== undefined;
    const route = path.replace("/authenticate/admin/", "");
    const body = JSON.parse(text) as Record<string, any>;
    received.push({ url, route, body, signed, userAgent: headers.get("User-Agent") });
    const answer = options.answers?.[route];
    const { status = 200, body: payload } = typeof answer === "function" ? answer(body) : (answer ?? { body: {} });
    return new Response(JSON.stringify(payload), {
      status,
      headers: {
        "Content-Type": status < 400 ? "application/json" : "application/problem+json",
        "X-Request-Id": "rid-1",
      },
    });
  };
  const code = await runAdmin(argv, {
    surroundings: { env: options.env ?? {}, root, fetch: stand_in as typeof fetch },
    out: (text) => out.push(text),
    err: (text) => err.push(text),
    stdin: () => options.stdin ?? "",
  });
  return { code, out: out.join("\n"), err: err.join("\n"), received };
}

const problem = (status: number, code: string, detail: string): Answer => ({
  status,
  body: { type: `urn:gridgate:problem:${code}`, status, code, detail },
});

describe("the command line", () => {
  it.each([
    ["member:suspnd", "member:suspend"],
    ["orgs:list", "org:list"],
    ["secret-create", "secret:create"],
    ["AUDIT", "audit"],
  ])("suggests the closest command for %s", async (typo, meant) => {
    expect(closestCommand(typo)).toBe(meant);
    const { code, err, received } = await run([typo]);
    expect(code).toBe(2);
    expect(err).toContain(`unknown command ${typo}; did you mean ${meant}?`);
    expect(received).toEqual([]);
  });

  it("suggests nothing for a word far from every command", async () => {
    expect(closestCommand("frobnicate")).toBeUndefined();
    expect((await run(["frobnicate"])).err).toMatch(/unknown command frobnicate\n/);
  });

  it.each([
    [["org:list", "--bogus"], /Unknown option '--bogus'/],
    [["org:list", "--email", "a@b.example"], /org:list takes no --email/],
    [["member:suspend", "--org", "a"], /member:suspend needs --email/],
    [["member:suspend", "--org", "a", "--email", " "], /member:suspend needs --email/],
    [["org:list", "extra"], /unexpected argument "extra"/],
    [[], /no command/],
    [
      ["member:password", "--org", "a", "--email", "a@b.example", "--password", "hunter2hunter2"],
      /--password is refused/,
    ],
    [["member:create", "--org", "a", "--email", "a@b.example", "--role", "user"], /no password: pipe it in/],
    [["member:sign-out", "--org", "a"], /give --org and --email, or --member-id/],
    [["member:sign-out", "--member-id", "3", "--email", "a@b.example"], /either --member-id or --org and --email/],
    [["org:sso:set", "--org", "a", "--client-secret", "s3cret"], /--client-secret is refused/],
    [["org:sso:set", "--org", "a", "--required", "maybe"], /--required must be yes or no/],
    [["audit", "--since", "yesterday"], /--since must be a duration/],
    [["audit", "--limit", "0"], /--limit must be a whole number/],
    [["org:list", "--env", "../prod"], /--env must be an environment name/],
  ])("refuses %j before sending anything (exit 2)", async (argv, message) => {
    const { code, err, received } = await run(argv);
    expect(code).toBe(2);
    expect(err).toMatch(message);
    expect(err).toContain("nothing was sent");
    expect(received).toEqual([]);
  });

  it("prints the usage with every command for --help", async () => {
    const { code, out } = await run(["--help"]);
    expect(code).toBe(0);
    for (const name of [
      "org:create",
      "org:list",
      "member:list",
      "secret:create",
      "secret:list",
      "secret:revoke",
      "org:sso:set",
      "org:sso:show",
      "org:sso:remove",
      "audit",
    ])
      expect(out).toContain(`  ${name} `);
    expect(out).toBe(usage());
  });

  it.each([
    ["30m", 1_000_000_000_000 - 1_800_000],
    ["1h", 1_000_000_000_000 - 3_600_000],
    ["7d", 1_000_000_000_000 - 604_800_000],
    ["2026-12-01", Date.UTC(2026, 11, 1)],
    ["2026-12-01T09:30", Date.UTC(2026, 11, 1, 9, 30)],
    ["2026-12-01T09:30:00+01:00", Date.UTC(2026, 11, 1, 8, 30)],
  ])("reads --since %s", (raw, at) => {
    expect(parseSince(raw, 1_000_000_000_000)).toBe(at);
  });
});

describe("requests to the gateway", () => {
  it("signs each command's request with ADMIN_SECRET from .dev.vars and sends it to npm run dev's gateway", async () => {
    const { code, out, received } = await run(["member:suspend", "--org", "k8p2za", "--email", "ann@kappa.example"], {
      answers: {
        "member/suspend": {
          body: { member: { identifier: "abc123", email: "ann@kappa.example", status: "suspended" }, from: "active" },
        },
      },
    });
    expect(code).toBe(0);
    expect(received).toEqual([
      {
        url: "http://127.0.0.1:8787/authenticate/admin/member/suspend",
        route: "member/suspend",
        body: { org: "k8p2za", email: "ann@kappa.example" },
        signed: true,
        userAgent: expect.stringMatching(/^gridgate-admin \(.+\)$/),
      },
    ]);
    expect(out).toBe(
      "member abc123 ann@kappa.example: active → suspended; signed out everywhere (access tokens refused within 60 s) [local]",
    );
  });

  it("sends the password from stdin to the gateway, never on the command line", async () => {
    const { code, received } = await run(
      ["member:create", "--org", "k8p2za", "--email", "ann@kappa.example", "--role", "builder", "--password-stdin"],
      {
        stdin: "a-long-password-123\n",
        answers: {
          "member/create": {
            body: { member: { id: 7, identifier: "abc123", email: "ann@kappa.example", role: "builder", scopes: "" } },
          },
        },
      },
    );
    expect(code).toBe(0);
    expect(received[0]!.body).toEqual({
      org: "k8p2za",
      email: "ann@kappa.example",
      role: "builder",
      scopes: "",
      password: "a-long-password-123",
    });
  });

  it("says npm run dev is not running when nothing answers locally (exit 1)", async () => {
    const refused = Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
    for (const argv of [
      ["member:unlock", "--email", "a@b.example"],
      ["member:sign-out", "--member-id", "4"],
      ["org:list"],
    ]) {
      const { code, err } = await run(argv, { fetchError: refused });
      expect(code).toBe(1);
      expect(err).toBe("error: no gateway answers at http://127.0.0.1:8787 (ECONNREFUSED): is npm run dev running?");
    }
  });

  it("maps the gateway's refusals: bad input exits 2 (nothing written), a failure or a wrong secret exits 1", async () => {
    const argv = ["org:plan", "--org", "k8p2za", "--plan", "gold"];
    const bad = await run(argv, {
      answers: { "org/plan": problem(400, "invalid_request", "plan must be one of free, professional, enterprise") },
    });
    expect(bad.code).toBe(2);
    expect(bad.err).toBe(
      "error: plan must be one of free, professional, enterprise (400 invalid_request; request rid-1; nothing was written)",
    );
    const unknown = await run(argv, { answers: { "org/plan": problem(404, "not_found", "No organisation k8p2za.") } });
    expect(unknown.code).toBe(2);
    const down = await run(argv, { answers: { "org/plan": problem(503, "temporarily_unavailable", "Try again.") } });
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/answered 503 temporarily_unavailable: Try again.; request rid-1; run the command again/);
    const wrongSecret = await run(argv, {
      secret: "another-secret-0123456789abcdef0123456789",
      answers: { "org/plan": problem(401, "invalid_token", "x") },
    });
    expect(wrongSecret.code).toBe(1);
    expect(wrongSecret.err).toMatch(/refused the signature: this ADMIN_SECRET is not the gateway's/);
    const disabled = await run(argv, { answers: { "org/plan": problem(404, "not_found", "No such gateway route.") } });
    expect(disabled.code).toBe(1);
    expect(disabled.err).toMatch(/has no admin routes: ADMIN_SECRET is not set there/);
  });

  it("--remote needs an https URL and ADMIN_SECRET; --env reads the secret from .secrets/<env>.env", async () => {
    expect((await run(["org:list", "--remote"])).err).toMatch(/--remote needs the deployed gateway's URL/);
    expect((await run(["org:list", "--remote", "--gateway", "http://gw.example"])).err).toMatch(/over https only/);
    expect((await run(["org:list", "--remote"], { env: { GATEWAY_URL: "https://gw.example" } })).err).toMatch(
      /no ADMIN_SECRET: set it in the environment, or name the environment with --env/,
    );
    const staging = await run(["org:list", "--env", "staging", "--gateway", "https://gw.example/"], {
      secret: STAGING_SECRET,
      answers: { "org/list": { body: { organisations: [], next: null } } },
    });
    expect(staging.code).toBe(0);
    expect(staging.received.map(({ url, signed }) => [url, signed])).toEqual([
      ["https://gw.example/authenticate/admin/org/list", true],
    ]);
    const fromEnv = await run(["member:unlock", "--email", "a@b.example", "--remote"], {
      env: { GATEWAY_URL: "https://gw.example", ADMIN_SECRET: STAGING_SECRET, CLOUDFLARE_ENV: "production" },
      secret: STAGING_SECRET,
      answers: { "member/unlock": { body: { unlocked: { failures: 0, wasLocked: false } } } },
    });
    expect(fromEnv.out).toBe("a@b.example: had 0 failed logins, not locked; may log in again now [remote]");
  });
});

describe("what the commands print", () => {
  it("audit pages newest first up to --limit and prints a table, or JSON lines with --json", async () => {
    const event = (id: number) => ({
      id,
      at: Date.UTC(2026, 11, 1, 10, 0, id),
      event: "member.suspend",
      outcome: "success",
      organisation: "k8p2za",
      organisation_id: 3,
      member: "abc123",
      member_id: 9,
      ip: "192.0.2.1",
      request_id: `r${id}`,
      detail: { actor: "operator", organisation: "k8p2za", member: "abc123", from: "active" },
    });
    const answers = {
      audit: (body: Record<string, any>) => ({
        body: body.before
          ? { events: [event(1)], next: null }
          : { events: [event(3), event(2)], next: { at: 2, id: 2 } },
      }),
    };
    const { code, out, received } = await run(["audit", "--org", "k8p2za", "--since", "1h", "--limit", "3"], {
      answers,
    });
    expect(code).toBe(0);
    expect(received.map((request) => request.body)).toEqual([
      { org: "k8p2za", since: expect.any(Number), limit: 3 },
      { org: "k8p2za", since: expect.any(Number), before: { at: 2, id: 2 }, limit: 1 },
    ]);
    expect(Math.abs(received[0]!.body.since - (Date.now() - 3_600_000))).toBeLessThan(60_000);
    expect(out.split("\n")).toEqual([
      expect.stringMatching(/^TIME \(UTC\) +EVENT +OUTCOME +BY +ORGANISATION +MEMBER +IP +DETAIL +REQUEST$/),
      expect.stringMatching(
        /^2026-12-01 10:00:03Z +member\.suspend +success +operator +k8p2za +abc123 +192\.0\.2\.1 +from=active +r3$/,
      ),
      expect.stringMatching(/^2026-12-01 10:00:02Z .* r2$/),
      expect.stringMatching(/^2026-12-01 10:00:01Z .* r1$/),
    ]);
    const json = await run(["audit", "--json", "--limit", "2"], { answers });
    expect(json.out.split("\n").map((line) => JSON.parse(line).id)).toEqual([3, 2]);
  });

  it("secret:create prints the secret once, with its kid", async () => {
    const { out } = await run(["secret:create", "--org", "k8p2za", "--label", "ci"], {
      answers: {
        "secret/create": {
          body: { kid: "ds_abc", secret: "S".repeat(43), label: "ci", organisationEntityIdentifier: "k8p2za" },
        },
      },
    });
    expect(out.split("\n").slice(0, 3)).toEqual([
      "created dynamic secret ds_abc for k8p2za (ci) [local]",
      "kid:    ds_abc",
      `secret: ${"S".repeat(43)}`,
    ]);
  });

  it("org:sso:set sends the client secret from stdin only, the domains as a list, required as true or false", async () => {
    const connection = {
      issuer: "https://idp.kappa.example",
      client_id: "gridgate",
      domains: ["kappa.example", "kappa.co.uk"],
      required: true,
    };
    const answer = {
      organisation: "k8p2za",
      created: true,
      connection,
      forgotten: 0,
      redirect_uri: "http://127.0.0.1:8787/authenticate/sso/callback",
    };
    const argv = ["org:sso:set", "--org", "k8p2za", "--issuer", connection.issuer, "--client-id", "gridgate"];
    const { code, out, received } = await run(
      [...argv, "--domains", " Kappa.Example,,kappa.co.uk", "--required", "yes", "--client-secret-stdin"],
      { stdin: "s3cret value\n", answers: { "org/sso/set": { body: answer } } },
    );
    expect(code).toBe(0);
    expect(received[0]!.body).toEqual({
      org: "k8p2za",
      issuer: connection.issuer,
      client_id: "gridgate",
      client_secret: "s3cret value",
      domains: [" Kappa.Example", "kappa.co.uk"],
      required: true,
    });
    expect(out.split("\n")).toEqual([
      "organisation k8p2za: single sign-on connected: issuer https://idp.kappa.example, client gridgate, domains kappa.example,kappa.co.uk, required: yes (passwords refused) [local]",
      "Redirect URI to register at the provider: http://127.0.0.1:8787/authenticate/sso/callback (on the host browsers reach the gateway at)",
    ]);

    const change = await run(["org:sso:set", "--org", "k8p2za", "--issuer", "https://other.example"], {
      answers: { "org/sso/set": { body: { ...answer, created: false, forgotten: 3 } } },
    });
    expect(change.received[0]!.body).toEqual({ org: "k8p2za", issuer: "https://other.example" });
    expect(change.out).toMatch(
      /single sign-on changed: .*; 3 member\(s\)' identities at the previous issuer forgotten \[local\]\n/,
    );

    const empty = await run([...argv, "--client-secret-stdin"], {
      stdin: "\n",
      answers: {
        "org/sso/set": problem(400, "invalid_request", "client_secret must be 1–1024 printable ASCII characters"),
      },
    });
    expect(empty.received[0]!.body.client_secret).toBe("");
    expect(empty.code).toBe(2);
    expect(empty.err).toMatch(/client_secret must be .*nothing was written/);
  });

  it("org:sso:show prints the connection or its absence; org:sso:remove what it removed", async () => {
    const connection = {
      issuer: "https://idp.kappa.example",
      client_id: "gridgate",
      domains: ["kappa.example"],
      required: false,
      pinned: 2,
      created_at: Date.UTC(2026, 11, 1, 9, 0, 0) / 1000,
      updated_at: Date.UTC(2026, 11, 2, 9, 0, 0) / 1000,
    };
    const shown = await run(["org:sso:show", "--org", "k8p2za"], {
      answers: { "org/sso/show": { body: { organisation: "k8p2za", connection } } },
    });
    expect(shown.received[0]!.body).toEqual({ org: "k8p2za" });
    expect(shown.out).toBe(
      "organisation k8p2za: issuer https://idp.kappa.example, client gridgate, domains kappa.example, required: no (passwords still work), client secret sealed under SECRETS_KEY, 2 member(s) signed in by SSO so far, set 2026-12-01 09:00:00Z, changed 2026-12-02 09:00:00Z [local]",
    );
    const none = await run(["org:sso:show", "--org", "k8p2za"], {
      answers: { "org/sso/show": { body: { organisation: "k8p2za", connection: null } } },
    });
    expect(none.out).toBe("organisation k8p2za: no single sign-on connection [local]");
    const removed = await run(["org:sso:remove", "--org", "k8p2za"], {
      answers: { "org/sso/remove": { body: { organisation: "k8p2za", removed: connection, forgotten: 2 } } },
    });
    expect(removed.out).toBe(
      "organisation k8p2za: single sign-on removed (2 remembered identities forgotten); its members sign in with passwords again (sessions started by SSO keep running until they end) [local]",
    );
    const absent = await run(["org:sso:remove", "--org", "k8p2za"], {
      answers: { "org/sso/remove": problem(404, "not_found", "Organisation k8p2za has no single sign-on connection.") },
    });
    expect(absent.code).toBe(2);
  });

  it("member:list follows every page", async () => {
    const member = (id: number) => ({
      id,
      identifier: `m${id}`,
      email: `m${id}@k.example`,
      role: "user",
      scopes: "",
      status: "active",
      created_at: 0,
    });
    const { out, received } = await run(["member:list", "--org", "k8p2za"], {
      answers: {
        "member/list": (body) => ({
          body: body.after ? { members: [member(3)], next: null } : { members: [member(1), member(2)], next: 2 },
        }),
      },
    });
    expect(received.map((request) => request.body)).toEqual([{ org: "k8p2za" }, { org: "k8p2za", after: 2 }]);
    expect(out.split("\n")).toHaveLength(4);
  });

  it("member:import checks every batch before writing any, and sends batches under the 16 KiB body limit", async () => {
    const rows = Array.from(
      { length: 300 },
      (_, i) => `member-${i}-${"x".repeat(40)}@kappa.example,user,getGrids,${BCRYPT}`,
    );
    const file = join(root, "members.csv");
    writeFileSync(file, ["email,role,scopes,bcrypt_hash", ...rows].join("\n"));
    const batches = importBatches("k8p2za", parseImport(["email,role,scopes,bcrypt_hash", ...rows].join("\n")));
    expect(batches.length).toBeGreaterThan(2);
    expect(batches.flat()).toHaveLength(300);
    const answers = {
      "member/import": (body: Record<string, any>) => ({
        body: body.check ? { existing: [] } : { imported: body.members.map(() => ({})) },
      }),
    };
    const { code, out, received } = await run(["member:import", "--org", "k8p2za", "--file", file], { answers });
    expect(code).toBe(0);
    expect(received.map((request) => request.body.check ?? false)).toEqual([
      ...batches.map(() => true),
      ...batches.map(() => false),
    ]);
    for (const request of received)
      expect(new TextEncoder().encode(JSON.stringify(request.body)).byteLength).toBeLessThanOrEqual(16 * 1024);
    expect(out).toContain(`imported 300 member(s) into k8p2za in ${batches.length} request(s)`);

    const clash = await run(["member:import", "--org", "k8p2za", "--file", file], {
      answers: { "member/import": (body) => ({ body: { existing: body.check ? [body.members[0].email] : [] } }) },
    });
    expect(clash.code).toBe(2);
    expect(clash.received.every((request) => request.body.check)).toBe(true);
  });
});
