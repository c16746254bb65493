// A small HTTP/1.1 keep-alive client over raw sockets (cheap enough not to be the bottleneck), closed-loop load and stats.
import net from "node:net";

/** Serialises one request; `body` is a string sent with Content-Length. */
export function requestBytes(port, method, path, headers = {}, body) {
  const lines = [
    `${method} ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    "Accept-Encoding: identity",
    "User-Agent: gridgate-bench",
  ];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n${body ?? ""}`);
}

/** Parses one complete response at the start of `buf`, or returns null when more bytes are needed. */
function parseResponse(buf) {
  const headerEnd = buf.indexOf("\r\n\r\n");
  if (headerEnd < 0) return null;
  const head = buf.toString("latin1", 0, headerEnd);
  const status = Number(head.slice(9, 12));
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  let pos = headerEnd + 4;
  if (length) {
    const end = pos + Number(length[1]);
    return buf.length < end ? null : { status, head, body: buf.subarray(pos, end), consumed: end };
  }
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
    const parts = [];
    for (;;) {
      const lineEnd = buf.indexOf("\r\n", pos);
      if (lineEnd < 0) return null;
      const size = parseInt(buf.toString("latin1", pos, lineEnd), 16);
      pos = lineEnd + 2;
      if (size === 0)
        return buf.length < pos + 2 ? null : { status, head, body: Buffer.concat(parts), consumed: pos + 2 };
      if (buf.length < pos + size + 2) return null;
      parts.push(buf.subarray(pos, pos + size));
      pos += size + 2;
    }
  }
  if (status === 204 || status === 304) return { status, head, body: Buffer.alloc(0), consumed: pos };
  throw new Error(`response without a length: ${head.split("\r\n")[0]}`);
}

/** One keep-alive connection to 127.0.0.1:`port`; `send` writes a request and resolves with the parsed response. */
export class Connection {
  constructor(port) {
    this.port = port;
    this.buffer = Buffer.alloc(0);
    this.pending = null;
  }

  open() {
    return new Promise((resolve, reject) => {
      this.socket = net.connect({ host: "127.0.0.1", port: this.port, noDelay: true });
      this.socket.once("connect", resolve);
      this.socket.once("error", reject);
      this.socket.on("data", (chunk) => this.onData(chunk));
      this.socket.on("close", () => this.pending?.reject(new Error("connection closed")));
    });
  }

  onData(chunk) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    if (!this.pending) return;
    let response;
    try {
      response = parseResponse(this.buffer);
    } catch (error) {
      this.pending.reject(error);
      return;
    }
    if (!response) return;
    this.buffer = this.buffer.subarray(response.consumed);
    const { resolve } = this.pending;
    this.pending = null;
    resolve(response);
  }

  send(bytes) {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(bytes);
    });
  }

  close() {
    this.socket?.destroy();
  }
}

/** Opens a connection, sends one request, closes; for checks. */
export async function once(port, bytes) {
  const connection = new Connection(port);
  await connection.open();
  try {
    return await connection.send(bytes);
  } finally {
    connection.close();
  }
}

/** The `q`-quantile (nearest rank) of ascending `sorted`. */
export function quantile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] : NaN;
}

/** Median of numbers. */
export function median(values) {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/**
 * Closed-loop load: `connections` keep-alive connections each send `bytes`, wait for the whole response
 * and send again, for `durationMs`. Latencies in ms; `bad` counts responses whose status is not `expect`.
 */
export async function closedLoop(port, bytes, { connections, durationMs, expect = 200 }) {
  const pool = Array.from({ length: connections }, () => new Connection(port));
  await Promise.all(pool.map((connection) => connection.open()));
  const latencies = [];
  let bad = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    pool.map(async (connection) => {
      while (performance.now() < deadline) {
        const sent = performance.now();
        const response = await connection.send(bytes);
        latencies.push(performance.now() - sent);
        if (response.status !== expect) bad++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  for (const connection of pool) connection.close();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    rps: latencies.length / elapsed,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    mean: latencies.reduce((sum, value) => sum + value, 0) / latencies.length,
    bad,
  };
}
