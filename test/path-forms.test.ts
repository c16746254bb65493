// Path forms an origin could resolve to another resource than the one the scope check saw: 400 ambiguous_path.
import { afterEach, describe, expect, it, vi } from "vitest";
import { fakeOrigin, fixedClaims, gateway, problem, signWithJose } from "./helpers";

afterEach(() => vi.restoreAllMocks());

async function get(path: string, scope: string): Promise<Response> {
  const token = await signWithJose(fixedClaims({ scope }));
  return gateway(path, { headers: { Authorization: `Bearer ${token}` } });
}

const AMBIGUOUS: [string, string][] = [
  // Tomcat / Spring: ;-parameters are cut before dot segments are resolved (the "..;/" bypass)
  ["/grids/..;/members", "dot segment with ;-parameters"],
  ["/grids/.;/x", "dot segment with ;-parameters"],
  ["/grids/..;jsessionid=x/members", "dot segment with ;-parameters"],
  ["/grids/%2e%2e;/members", "dot segment with ;-parameters"],
  ["/grids/..%3B/members", "dot segment with ;-parameters"],
  ["/grids/..;", "dot segment with ;-parameters"],
  // an origin that percent-decodes twice
  ["/grids/%252e%252e/members", "double-encoded"],
  ["/grids/%252E%252E/members", "double-encoded"],
  ["/grids/.%252e/members", "double-encoded"],
  ["/grids/..%252fmembers", "double-encoded"],
  ["/grids/..%252Fmembers", "double-encoded"],
  ["/grids/..%255cmembers", "double-encoded"],
  ["/grids/%25252e%25252e/members", "double-encoded"],
  ["/grids/..%253b/members", "double-encoded"],
  ["/grids/1%2500", "double-encoded"],
  // NUL and other control characters (C string truncation, CRLF in logs and redirects)
  ["/grids/1%00", "control character"],
  ["/grids/1%00.json", "control character"],
  ["/grids/1%0d%0aSet-Cookie:%20a=b", "control character"],
  ["/grids/1%7F", "control character"],
  // IIS %u encoding, and % that encodes nothing
  ["/grids/%u002e%u002e/members", "not a percent-encoded byte"],
  ["/grids/1%zz", "not a percent-encoded byte"],
  ["/grids/1%", "not a percent-encoded byte"],
  // overlong UTF-8 (lenient decoders, CVE-2008-2938 family)
  ["/grids/%c0%ae%c0%ae/members", "overlong UTF-8"],
  ["/grids/..%c0%afmembers", "overlong UTF-8"],
  ["/grids/%e0%80%ae%e0%80%ae/members", "overlong UTF-8"],
  // NFKC-normalising stacks: full-width and compatibility dots and slashes
  ["/grids/%EF%BC%8E%EF%BC%8E/members", "full-width or compatibility"],
  ["/grids/..%ef%bc%8fmembers", "full-width or compatibility"],
  ["/grids/..%ef%bc%bcmembers", "full-width or compatibility"],
  ["/grids/%e2%80%a5/members", "full-width or compatibility"],
  // Windows / IIS trim trailing dots and spaces of a segment
  ["/grids/.../members", "only dots and spaces"],
  ["/grids/..%20/members", "only dots and spaces"],
  ["/grids/.%20/x", "only dots and spaces"],
  ["/grids/x/...", "only dots and spaces"],
];

describe("ambiguous path forms", () => {
  it.each(AMBIGUOUS)("400 ambiguous_path for %s (%s), with a getGrids token", async (path, what) => {
    const seen = fakeOrigin();
    const response = await get(path, "getGrids");
    expect(response.status).toBe(400);
    const body = await problem(response);
    expect(body).toMatchObject({ code: "ambiguous_path", type: "urn:gridgate:problem:ambiguous_path" });
    expect(body.detail).toContain(what);
    expect(seen).toEqual([]);
  });

  it.each(AMBIGUOUS.map(([path]) => [path]))("400 ambiguous_path for %s with an architect token too", async (path) => {
    const seen = fakeOrigin();
    const response = await get(path, "architect");
    expect(response.status).toBe(400);
    expect((await problem(response)).code).toBe("ambiguous_path");
    expect(seen).toEqual([]);
  });

  it("a token that may not use the resource as the gateway reads it still gets 403 first", async () => {
    const seen = fakeOrigin();
    const response = await get("/grids/..;/members", "getCells");
    expect(response.status).toBe(403);
    expect((await problem(response)).code).toBe("insufficient_scope");
    expect(seen).toEqual([]);
  });
});

describe("forms the runtime's URL parser resolves before the gateway sees the path", () => {
  it.each([
    "/grids/%2e%2e/members",
    "/grids/.%2e/members",
    "/grids/%2E%2E/members",
    "/grids\\..\\members",
    "/grids/x/../../members",
  ])(
    "%s is /members: a getGrids token gets 403, an architect's request reaches the origin as /members",
    async (path) => {
      const seen = fakeOrigin();
      const denied = await get(path, "getGrids");
      expect(denied.status).toBe(403);
      expect((await problem(denied)).code).toBe("insufficient_scope");
      expect(seen).toEqual([]);
      expect((await get(path, "architect")).status).toBe(200);
      expect(seen.map((request) => request.url)).toEqual(["https://origin.test/api/members"]);
    },
  );
});

describe("ordinary paths keep working", () => {
  it.each([
    "/grids",
    "/grids/12/cells",
    "/grids/1.json",
    "/grids/a.b/c..d",
    "/grids/.well-known",
    "/grids/%41%42",
    "/grids/a%20b",
    "/grids/%2567",
    "/grids/x;v=1",
    "/grids/caf%C3%A9",
    "/grids/%E2%82%AC",
    "/grids/100%25",
    "/grids/",
  ])("%s is forwarded as sent with a getGrids token", async (path) => {
    const seen = fakeOrigin();
    const response = await get(path, "getGrids");
    expect(response.status).toBe(200);
    expect(seen.map((request) => request.url)).toEqual([`https://origin.test/api${path}`]);
  });

  it.each(["/grids/..%2Fadmin", "/grids/..%5cadmin"])(
    "%s stays 400 invalid_request (encoded separator)",
    async (path) => {
      const seen = fakeOrigin();
      const response = await get(path, "architect");
      expect(response.status).toBe(400);
      expect((await problem(response)).code).toBe("invalid_request");
      expect(seen).toEqual([]);
    },
  );
});
