/** The scope policy: one table of roles, plus granular `<resource>` and `<method><Resource>` scopes. */
import { LruCache } from "../cache/lru";

const ALL_METHODS = "*";

/** The only definition of roles and the methods they allow (a `Map`, so `__proto__` is just an unknown scope). */
export const ROLE_POLICY: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ["architect", new Set([ALL_METHODS])],
  ["organisation", new Set([ALL_METHODS])],
  ["builder", new Set(["GET", "HEAD", "POST", "PUT", "PATCH"])],
  ["user", new Set(["GET", "HEAD"])],
]);

/** Roles a member row may hold (`organisation` is for integrations' dynamic tokens only). */
export const MEMBER_ROLES = ["architect", "builder", "user"] as const;

const PARSED_SCOPES_LIMIT = 1024;

const GRANULAR_RESOURCE = /^[a-z0-9_-][\x21\x23-\x5B\x5D-\x7E]*$/;

/** Only lower-case scope-token resources that are no role name have granular scopes (docs/api.md). */
function hasGranularScopes(resource: string): boolean {
  return GRANULAR_RESOURCE.test(resource) && !ROLE_POLICY.has(resource);
}

function granularScope(method: string, resource: string): string {
  const verb = method === "HEAD" ? "get" : method.toLowerCase();
  return verb + resource.charAt(0).toUpperCase() + resource.slice(1);
}

/** The scopes that would allow `method` on `resource`, narrowest first, for the RFC 6750 challenge. */
export function scopesAllowing(method: string, resource: string): string[] {
  const granular = hasGranularScopes(resource) ? [granularScope(method, resource), resource] : [];
  const roles = [...ROLE_POLICY]
    .filter(([, methods]) => methods.has(ALL_METHODS) || methods.has(method))
    .map(([role]) => role)
    .reverse();
  return [...granular, ...roles];
}

/** Default deny: true only when some scope in `granted` allows `method` on `resource`. */
export function isAllowed(granted: ReadonlySet<string>, method: string, resource: string): boolean {
  for (const role of granted) {
    const methods = ROLE_POLICY.get(role);
    if (methods && (methods.has(ALL_METHODS) || methods.has(method))) return true;
  }
  return hasGranularScopes(resource) && (granted.has(resource) || granted.has(granularScope(method, resource)));
}

/** The token scope of a member: its role, then its extra granular scopes, without duplicates. */
export function memberScope(role: string | null, extraScopes: string): string {
  return [...new Set([...(role ? [role] : []), ...extraScopes.split(/\s+/).filter(Boolean)])].join(" ");
}

/** The resource of a request path: its first segment, percent-decoded (`/grids/12/cells` → `grids`). */
export function resourceOf(pathname: string): string | undefined {
  const end = pathname.indexOf("/", 1);
  const segment = pathname.slice(1, end === -1 ? undefined : end);
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Token scopes parsed into sets, kept per isolate: a gateway sees few distinct scope strings. */
export class ScopeSets {
  private readonly parsed = new LruCache<string, ReadonlySet<string>>({ maxEntries: PARSED_SCOPES_LIMIT });

  of(scope: string): ReadonlySet<string> {
    let set = this.parsed.get(scope);
    if (!set) {
      set = new Set(scope.split(" ").filter(Boolean));
      this.parsed.set(scope, set);
    }
    return set;
  }
}
