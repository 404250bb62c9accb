/**
 * HTTP/1.1 heads for the clients that dbg speaks over sockets of its own: the Docker API
 * (runtimes/docker) and the WebSocket upgrade of Kubernetes streams (runtimes/k8s/websocket.ts).
 * Pure: no I/O.
 *
 * @module
 */

/** The status line and headers of an HTTP/1.1 response. */
export type ResponseHead = { status: number; statusText: string; headers: Headers };

/** Joins byte arrays into one. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Index just past the first `\r\n\r\n` in `buf`, or -1 when the head is not complete yet. */
export function findHeadEnd(buf: Uint8Array): number {
  for (let i = 3; i < buf.length; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

/** Encodes a request line and headers, ending with the blank line. Rejects CR/LF injection. */
export function encodeRequestHead(
  method: string,
  target: string,
  headers: Record<string, string>,
): Uint8Array {
  const lines = [`${method} ${target} HTTP/1.1`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  for (const line of lines) {
    if (/[\r\n\0]/.test(line)) {
      throw new TypeError(`Request head contains a line break: ${JSON.stringify(line)}`);
    }
  }
  return new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
}

/**
 * Parses a response head (status line and header lines; the blank line is optional). `bad` makes
 * the error for what is not HTTP.
 */
export function parseResponseHead(
  head: Uint8Array,
  bad: (detail: string, cause?: unknown) => Error = (d, cause) =>
    new Error(`Bad HTTP response: ${d}`, { cause }),
): ResponseHead {
  // Header bytes are Latin-1; decode byte by byte so `Headers` never sees characters above 0xFF.
  let text = "";
  for (let i = 0; i < head.length; i += 4096) {
    text += String.fromCharCode(...head.subarray(i, i + 4096));
  }
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) {
    throw bad(`not an HTTP/1.1 status line: ${JSON.stringify(lines[0].slice(0, 80))}`);
  }
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw bad(`bad header line: ${JSON.stringify(line.slice(0, 80))}`);
    try {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch (err) {
      throw bad(`bad header line: ${JSON.stringify(line.slice(0, 80))}`, err);
    }
  }
  return { status: Number(m[1]), statusText: m[2] ?? "", headers };
}
