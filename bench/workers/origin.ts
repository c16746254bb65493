/** Bench-only minimal origin: answers every request with a small JSON echo of what the gateway forwarded. */
export default {
  fetch(request: Request): Response {
    const url = new URL(request.url);
    return Response.json({
      method: request.method,
      path: url.pathname + url.search,
      member: request.headers.get("X-Member-Entity-Identifier"),
      organisation: request.headers.get("X-Organisation-Entity-Identifier"),
      grid: { id: 12, rows: 3, columns: 3 },
    });
  },
};
