/** The scope policy: one table of roles, plus granular `<resource>` and `<method><Resource>` scopes. */
import { LruCache } from "../cache/lru";

const ALL_METHODS = "*";

/**
 * Roles and what they may do on every resource. The only place roles are defined: a member's
 * token scope is its role plus its extra granular scopes, and nothing else grants access.
 * A `Map`, so scope names such as `constructor` or `__proto__` are just unknown scopes.
 */
export const ROLE_POLICY: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ["architect", new Set([ALL_METHODS])],
  ["organisation", new Set([ALL_METHODS])],
  ["builder", new Set(["GET", "HEAD", "POST", "PUT", "PATCH"])],
  ["user", new Set(["GET", "HEAD"])],
]);

/** Roles a member row may hold (`organisation` is for integrations' dynamic tokens only). */
export const MEMBER_ROLES = ["architect", "builder", "user"] as const;

const PARSED_SCOPES_LIMIT = 1024;

/** A resource that granular scopes can name: lower-case first, then RFC 6749 scope-token characters. */
const GRANULAR_RESOURCE = /^[a-z0-9_-][\x21\x23-\x5B\x5D-\x7E]*$/;

/**
 * Granular scopes name resources that start lower-case, so `getGrids` means `/grids` only and can
 * never also match `/Grids`, and that are not role names, so scope `user` never means "every method
 * on `/user`". Every other path (and any path segment that is no valid scope token) is reachable
 * through roles alone.
 */
function hasGranularScopes(resource: string): boolean {
  return GRANULAR_RESOURCE.test(resource) && !ROLE_POLICY.has(resource);
}

/** `getGrids` for GET/HEAD on `grids`, `deleteGrids` for DELETE, and so on. */
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

  /** The scopes of a space-delimited `scope` string. */
  of(scope: string): ReadonlySet<string> {
    let set = this.parsed.get(scope);
    if (!set) {
      set = new Set(scope.split(" ").filter(Boolean));
      this.parsed.set(scope, set);
    }
    return set;
  }
}
