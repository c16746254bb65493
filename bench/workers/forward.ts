/** Bench-only reference: the least a forwarding Worker can do (drop Authorization, fetch ORIGIN_URL, stream back). */
export default {
  async fetch(request: Request, env: { ORIGIN_URL: string }): Promise<Response> {
    const incoming = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.delete("Authorization");
    const response = await fetch(new URL(incoming.pathname + incoming.search, env.ORIGIN_URL), {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
    return new Response(response.body, response);
  },
};
