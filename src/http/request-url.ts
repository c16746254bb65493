/** The path and query of a request URL, cut from the string the runtime already normalised. */

function pathStart(url: string): number {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  return start === -1 ? url.length : start;
}

/** Path and query of an absolute request URL, without a fragment (`https://h/a/b?q=1` → `/a/b?q=1`). */
export function pathAndQuery(url: string): string {
  const start = pathStart(url);
  const hash = url.indexOf("#", start);
  const target = url.slice(start, hash === -1 ? undefined : hash);
  return target === "" || target.startsWith("?") ? `/${target}` : target;
}

/** Path of an absolute request URL, still percent-encoded (`https://h/a/b?q=1` → `/a/b`). */
export function pathOf(url: string): string {
  const target = pathAndQuery(url);
  const query = target.indexOf("?");
  return query === -1 ? target : target.slice(0, query);
}
