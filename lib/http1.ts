/**
 * HTTP/1.1 for the clients that dbg speaks over sockets of its own: the Docker API
 * (runtimes/docker) and the Kubernetes API (runtimes/k8s/rest.ts, and the WebSocket upgrade of
 * its streams): request and response heads, and body framing (Content-Length, chunked, until
 * EOF). Pure: no I/O.
 *
 * @module
 */

/** Makes the error for a response that is not valid HTTP. */
export type Bad = (detail: string, cause?: unknown) => Error;

const badHttp: Bad = (d, cause) => new Error(`Bad HTTP response: ${d}`, { cause });

/**
 * Response headers by lowercase name, a repeated one's values joined with ", " (as fetch's
 * Headers has them; that class costs ~1.5 ms on its first use in a process).
 */
export type HeaderMap = Map<string, string>;

/** The status line and headers of an HTTP/1.1 response. */
export type ResponseHead = { status: number; statusText: string; headers: HeaderMap };

/** Adds a header to `headers`, after the values it has under that name, as Headers.append. */
export function appendHeader(headers: HeaderMap, name: string, value: string): void {
  headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
}

/** What a header's name may be (RFC 9110 §5.6.2's token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

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
  bad: Bad = badHttp,
): ResponseHead {
  // Header bytes are Latin-1: decoded byte by byte.
  let text = "";
  for (let i = 0; i < head.length; i += 4096) {
    text += String.fromCharCode(...head.subarray(i, i + 4096));
  }
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) {
    throw bad(`not an HTTP/1.1 status line: ${JSON.stringify(lines[0].slice(0, 80))}`);
  }
  const headers: HeaderMap = new Map();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase(), value = line.slice(colon + 1).trim();
    if (colon <= 0 || !TOKEN.test(name) || /[\0\r\n]/.test(value)) {
      throw bad(`bad header line: ${JSON.stringify(line.slice(0, 80))}`);
    }
    appendHeader(headers, name, value);
  }
  return { status: Number(m[1]), statusText: m[2] ?? "", headers };
}

/** How the body of a response is delimited, decided from its method, status and headers. */
export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "eof" };

/** A stateful body decoder: feed it bytes as they arrive, read `done`, and call `end()` at EOF. */
export interface BodyDecoder {
  /** Takes the next bytes; returns the body bytes they contain (bytes past the end are ignored). */
  push(chunk: Uint8Array): Uint8Array[];
  /** True once the whole body has been seen. */
  readonly done: boolean;
  /** Call at EOF; returns false when the body was cut short. */
  end(): boolean;
}

/** Decides how the body is delimited (RFC 9112 §6.3); no body for HEAD, 1xx, 204 and 304. */
export function bodyFraming(method: string, head: ResponseHead, bad: Bad = badHttp): BodyFraming {
  const s = head.status;
  if (method === "HEAD" || (s >= 100 && s < 200) || s === 204 || s === 304) return { kind: "none" };
  const te = head.headers.get("transfer-encoding");
  if (te && /(^|,)\s*chunked\s*$/i.test(te)) return { kind: "chunked" };
  const cl = head.headers.get("content-length");
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl.trim())) throw bad(`bad Content-Length: ${JSON.stringify(cl)}`);
    return { kind: "length", length: Number(cl.trim()) };
  }
  return { kind: "eof" };
}

/** Creates the decoder for a framing. */
export function bodyDecoder(framing: BodyFraming, bad: Bad = badHttp): BodyDecoder {
  switch (framing.kind) {
    case "none":
      return { push: () => [], done: true, end: () => true };
    case "eof":
      return { push: (c) => (c.length ? [c] : []), done: false, end: () => true };
    case "length":
      return new LengthDecoder(framing.length);
    case "chunked":
      return new ChunkedDecoder(bad);
  }
}

/** Passes exactly `length` bytes. */
export class LengthDecoder implements BodyDecoder {
  #left: number;
  constructor(length: number) {
    this.#left = length;
  }
  get done(): boolean {
    return this.#left === 0;
  }
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#left === 0 || chunk.length === 0) return [];
    const part = chunk.subarray(0, Math.min(this.#left, chunk.length));
    this.#left -= part.length;
    return [part];
  }
  end(): boolean {
    return this.#left === 0;
  }
}

/** Decodes `Transfer-Encoding: chunked` across arbitrary read boundaries (RFC 9112 §7.1). */
export class ChunkedDecoder implements BodyDecoder {
  #state: "size" | "data" | "dataEnd" | "trailer" | "done" = "size";
  #left = 0;
  #line = "";
  constructor(readonly bad: Bad = badHttp) {}

  get done(): boolean {
    return this.#state === "done";
  }

  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < chunk.length && this.#state !== "done") {
      if (this.#state === "data") {
        const n = Math.min(this.#left, chunk.length - i);
        out.push(chunk.subarray(i, i + n));
        i += n;
        this.#left -= n;
        if (this.#left === 0) this.#state = "dataEnd";
        continue;
      }
      const lf = chunk.indexOf(10, i);
      const stop = lf === -1 ? chunk.length : lf;
      this.#line += String.fromCharCode(...chunk.subarray(i, stop));
      if (this.#line.length > 4096) throw this.bad("chunk header line too long");
      i = stop;
      if (lf === -1) break;
      i++; // past the LF
      const line = this.#line.endsWith("\r") ? this.#line.slice(0, -1) : this.#line;
      this.#line = "";
      this.#onLine(line);
    }
    return out;
  }

  #onLine(line: string): void {
    if (this.#state === "size") {
      const hex = line.split(";")[0].trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) {
        throw this.bad(`bad chunk size: ${JSON.stringify(line.slice(0, 40))}`);
      }
      this.#left = parseInt(hex, 16);
      this.#state = this.#left === 0 ? "trailer" : "data";
    } else if (this.#state === "dataEnd") {
      if (line !== "") throw this.bad("chunk data longer than its size");
      this.#state = "size";
    } else if (this.#state === "trailer" && line === "") {
      this.#state = "done";
    }
  }

  end(): boolean {
    return this.#state === "done";
  }
}

/**
 * Yields one parsed JSON value per line of a newline-delimited JSON body (Docker's pull progress,
 * a Kubernetes watch). Chunks may be views of a reused buffer: each is decoded as it comes.
 * Blank lines are skipped; a line that is not JSON is an error made by `bad`.
 */
export async function* jsonLines<T = unknown>(
  body: AsyncIterable<Uint8Array>,
  bad: Bad = badHttp,
): AsyncGenerator<T, void, undefined> {
  const text = new TextDecoder();
  let rest = "";
  const parse = (line: string): T => {
    try {
      return JSON.parse(line) as T;
    } catch (err) {
      throw bad(`not a JSON line: ${JSON.stringify(line.slice(0, 80))}`, err);
    }
  };
  for await (const chunk of body) {
    rest += text.decode(chunk, { stream: true });
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const line of lines) if (line.trim()) yield parse(line.trim());
  }
  rest += text.decode();
  if (rest.trim()) yield parse(rest.trim());
}
