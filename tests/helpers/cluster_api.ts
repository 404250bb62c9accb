/**
 * Requests to the private cluster's API server (cluster.ts), without kubectl: one HTTPS request
 * with a bearer token, for readiness waits and setup.
 *
 * @module
 */

/** A request to the API server: status code and body. */
export type Api = (method: string, path: string, body?: string) => Promise<ApiResponse>;

export interface ApiResponse {
  /** HTTP status code (0 when the response was not HTTP). */
  status: number;
  body: string;
}

/**
 * One HTTPS request to the API server on 127.0.0.1:`port` with a bearer token. HTTP/1.0 over
 * Deno.connectTls, so that the answer is plain (no chunks) and no proxy of the environment
 * gets in the way (Deno's fetch does not bypass loopback addresses).
 */
export async function apiRequest(
  to: { port: number; caCert: string; token: string },
  method: string,
  path: string,
  body?: string,
): Promise<ApiResponse> {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: to.port,
    caCerts: [to.caCert],
  });
  try {
    const payload = new TextEncoder().encode(body ?? "");
    const head = [
      `${method} ${path} HTTP/1.0`,
      `Host: 127.0.0.1:${to.port}`,
      `Authorization: Bearer ${to.token}`,
      "Accept: application/json",
      ...(body === undefined ? [] : ["Content-Type: application/json"]),
      `Content-Length: ${payload.length}`,
      "",
      "",
    ].join("\r\n");
    const data = new Uint8Array([...new TextEncoder().encode(head), ...payload]);
    for (let n = 0; n < data.length;) n += await conn.write(data.subarray(n));
    const text = await new Response(conn.readable).text(); // the server closes: HTTP/1.0
    const split = text.indexOf("\r\n\r\n");
    return {
      status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0),
      body: split < 0 ? "" : text.slice(split + 4),
    };
  } finally {
    try {
      conn.close();
    } catch {
      // closed with its readable
    }
  }
}
