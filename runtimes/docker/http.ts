/**
 * The Docker Engine API transport: one small HTTP/1.1 client over `Deno.connect` (Unix socket,
 * or TCP without TLS). Normal requests, streamed bodies (`/wait`, pull progress) and the hijacked
 * attach share the same code. Every request uses a new connection, as the hijack consumes its
 * connection anyway. API: https://docs.docker.com/reference/api/engine/version/v1.47/
 *
 * @module
 */

import {
  apiError,
  badResponse,
  decodeBody,
  isOk,
  lostConnection,
  MAX_HEAD_BYTES,
  pickApiVersion,
} from "./_wire.ts";
import {
  type BodyDecoder,
  bodyDecoder,
  bodyFraming,
  concatBytes,
  encodeRequestHead,
  findHeadEnd,
  type HeaderMap,
  parseResponseHead,
  type ResponseHead,
} from "../../lib/http1.ts";

import { cannotConnect, describe, type DockerEndpoint } from "./endpoint.ts";
import { DOCKER, type Engine } from "./engine.ts";

/** The most one read takes from the socket: a stream moves in few, large chunks. */
const READ_BYTES = 64 * 1024;

export { compareVersions, DockerApiError, MAX_API_VERSION, MIN_API_VERSION } from "./_wire.ts";
export { describe, type DockerEndpoint } from "./endpoint.ts";

/** Query parameters; `undefined` values are left out, the rest are stringified. */
export type Query = Record<string, string | number | boolean | undefined>;

/** Options of `request`, `stream` and `hijack`. */
export type RequestOptions = {
  query?: Query;
  /** A `Uint8Array` is sent as is; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Statuses outside 2xx to return instead of throwing, e.g. `[304, 404]`. */
  okStatuses?: number[];
  /**
   * Send the path without `/v<version>` (the daemon answers in its own version), so a request
   * need not wait for the version negotiation.
   */
  unversioned?: boolean;
};

/** A whole response: JSON bodies parsed, other bodies as text, empty bodies `undefined`. */
export type DockerResponse<T> = {
  status: number;
  headers: HeaderMap;
  body: T | string | undefined;
};

/** A response whose body is still arriving (de-chunked). Cancel the body to drop the connection. */
export type DockerStream = { status: number; headers: HeaderMap; body: ReadableStream<Uint8Array> };

/** A response whose body is read to its end in the background (de-chunked). */
export type DockerLater = { status: number; headers: HeaderMap; body: Promise<Uint8Array> };

/** The raw two-way byte stream left after a hijacked `POST …/attach`. */
export interface HijackedConn {
  readonly status: number;
  readonly headers: HeaderMap;
  /**
   * The daemon's bytes, starting with any read past the response head. Closes at EOF. Made on
   * first use (see {@link DockerClient.later}).
   */
  readonly readable: ReadableStream<Uint8Array>;
  /** The same bytes read into the caller's buffer instead (not both): a count, or null at EOF. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Writes all of `data` (loops on short writes). */
  write(data: Uint8Array): Promise<void>;
  /** Half-closes: the container's stdin sees EOF (with `StdinOnce`), output keeps flowing. */
  closeWrite(): Promise<void>;
  /** Closes the connection; safe to call twice. */
  close(): void;
}

/**
 * A Docker Engine API client bound to one endpoint.
 *
 * @example
 * ```ts
 * const docker = new DockerClient({ kind: "unix", path: "/var/run/docker.sock" });
 * await docker.negotiate();
 * const { body } = await docker.request<{ Id: string }>("GET", "/containers/web/json");
 * ```
 */
export class DockerClient {
  readonly endpoint: DockerEndpoint;
  #debug?: (msg: string) => void;
  #version?: string;
  #negotiating?: Promise<string>;

  /** The engine behind the endpoint (Docker or Podman), for the words of messages. */
  readonly engine: Engine;

  constructor(
    endpoint: DockerEndpoint,
    opts: { debug?: (msg: string) => void; engine?: Engine } = {},
  ) {
    this.endpoint = endpoint;
    this.engine = opts.engine ?? DOCKER;
    this.#debug = opts.debug;
  }

  /** The negotiated API version (e.g. "1.41"), once `negotiate()` has run. */
  get apiVersion(): string | undefined {
    return this.#version;
  }

  /**
   * Pings the daemon and picks min(daemon's `Api-Version`, 1.47), like the Go client. Later
   * paths get the `/v<version>` prefix. Called on first use if not called before.
   */
  negotiate(): Promise<string> {
    this.#negotiating ??= this.#negotiate().catch((err) => {
      this.#negotiating = undefined;
      throw err;
    });
    return this.#negotiating;
  }

  async #negotiate(): Promise<string> {
    const { ex, head, dec } = await this.#open("GET", "/_ping", { unversioned: true });
    try {
      await ex.readAll(dec);
    } finally {
      ex.close();
    }
    const version = pickApiVersion(head, describe(this.endpoint));
    const podman = head.headers.has("libpod-api-version");
    this.#debug?.(`docker: API ${version}${podman ? " (podman)" : ""}`);
    return this.#version = version;
  }

  /** Sends a request and reads the whole body. Non-2xx (outside `okStatuses`) throws DockerApiError. */
  async request<T>(
    method: string,
    path: string,
    opts: RequestOptions = {},
  ): Promise<DockerResponse<T>> {
    const { ex, head, dec } = await this.#open(method, path, opts);
    let body: T | string | undefined;
    try {
      body = decodeBody<T>(head, await ex.readAll(dec));
    } finally {
      ex.close();
    }
    if (!isOk(head.status, opts.okStatuses)) throw apiError(head, body);
    return { status: head.status, headers: head.headers, body };
  }

  /**
   * Sends a request and returns as soon as the response head arrives; the body streams in.
   * For `/images/create` (progress).
   */
  async stream(method: string, path: string, opts: RequestOptions = {}): Promise<DockerStream> {
    const { ex, head, dec } = await this.#open(method, path, opts);
    if (!isOk(head.status, opts.okStatuses)) await reject(ex, head, dec);
    return { status: head.status, headers: head.headers, body: ex.body(dec) };
  }

  /**
   * Sends a request and returns as soon as the response head arrives, with the whole body to
   * come: for `/containers/{id}/wait` (head at once, body at the exit). No web stream: the first
   * stream or Response of a process costs ~2-4 ms of setup, which would delay the start.
   */
  async later(method: string, path: string, opts: RequestOptions = {}): Promise<DockerLater> {
    const { ex, head, dec } = await this.#open(method, path, opts);
    if (!isOk(head.status, opts.okStatuses)) await reject(ex, head, dec);
    const body = ex.readAll(dec).finally(() => ex.close());
    return { status: head.status, headers: head.headers, body };
  }

  /**
   * POSTs with `Upgrade: tcp` and hands over the raw connection (attach). 101 and 200 are
   * success. Docker hijacks before it reports an error, so errors arrive as a bare status line
   * and a plain-text message; they become DockerApiError.
   */
  async hijack(
    path: string,
    opts: Pick<RequestOptions, "query" | "headers" | "signal" | "body"> = {},
  ): Promise<HijackedConn> {
    const { ex, head, dec } = await this.#open("POST", path, { ...opts, upgrade: true });
    if (head.status !== 101 && head.status !== 200) await reject(ex, head, dec);
    return ex.hijacked(head);
  }

  /** Connects, sends the request and reads the response head. */
  async #open(
    method: string,
    path: string,
    opts: RequestOptions & { upgrade?: boolean },
  ): Promise<{ ex: Exchange; head: ResponseHead; dec: BodyDecoder }> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) params.set(k, String(v));
    }
    const version = opts.unversioned ? "" : `/v${this.#version ?? await this.negotiate()}`;
    const target = `${version}${path}${params.size ? `?${params}` : ""}`;
    const headers: Record<string, string> = {
      Host: "docker",
      "User-Agent": "dbg",
      ...(opts.upgrade ? { Connection: "Upgrade", Upgrade: "tcp" } : { Connection: "close" }),
    };
    let body: Uint8Array | undefined;
    if (opts.body instanceof Uint8Array) body = opts.body;
    else if (opts.body !== undefined) {
      body = new TextEncoder().encode(JSON.stringify(opts.body));
      headers["Content-Type"] = "application/json";
    }
    if (body || method === "POST" || method === "PUT") {
      headers["Content-Length"] = String(body?.length ?? 0);
    }
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      for (const old of Object.keys(headers)) {
        if (old.toLowerCase() === k.toLowerCase()) delete headers[old];
      }
      headers[k] = v;
    }
    this.#debug?.(`docker: → ${method} ${target}`);
    // Messages name the request without the version, the query and most of a 64-hex id.
    const label = `${method} ${path.replace(/\b([0-9a-f]{12})[0-9a-f]{52}\b/g, "$1")}`;
    const ex = await Exchange.open(this.engine, this.endpoint, label, opts.signal);
    try {
      const head = encodeRequestHead(method, target, headers);
      await ex.write(body ? concatBytes([head, body]) : head);
      const res = await ex.readHead();
      this.#debug?.(`docker: ← ${res.status} ${res.statusText} (${label})`);
      return {
        ex,
        head: res,
        dec: bodyDecoder(bodyFraming(method, res, badResponse), badResponse),
      };
    } catch (err) {
      ex.close();
      throw err;
    }
  }
}

/** Reads an error body and throws it as DockerApiError. */
async function reject(ex: Exchange, head: ResponseHead, dec: BodyDecoder): Promise<never> {
  try {
    throw apiError(head, decodeBody(head, await ex.readAll(dec)));
  } finally {
    ex.close();
  }
}

/** One request on one connection: raw reads with the bytes read past the head kept. */
class Exchange {
  #conn: Deno.Conn;
  #what: string;
  #engine: Engine;
  #signal?: AbortSignal;
  #pending?: Uint8Array;
  #closed = false;
  #onAbort = () => this.close();

  static async open(
    engine: Engine,
    ep: DockerEndpoint,
    what: string,
    signal?: AbortSignal,
  ): Promise<Exchange> {
    signal?.throwIfAborted();
    let conn: Deno.Conn;
    try {
      conn = ep.kind === "unix"
        ? await Deno.connect({ transport: "unix", path: ep.path })
        : await Deno.connect({ hostname: ep.hostname, port: ep.port });
    } catch (err) {
      throw cannotConnect(engine, ep, err);
    }
    const ex = new Exchange(conn, engine, `${what} (${describe(ep)})`, signal);
    if (signal?.aborted) {
      ex.close();
      throw signal.reason;
    }
    return ex;
  }

  private constructor(conn: Deno.Conn, engine: Engine, what: string, signal?: AbortSignal) {
    this.#conn = conn;
    this.#engine = engine;
    this.#what = what;
    this.#signal = signal;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  #lost(detail: string, cause?: unknown): Error {
    if (this.#signal?.aborted) return this.#signal.reason;
    return lostConnection(`${this.#what}: ${detail}`, cause, this.#engine);
  }

  async write(data: Uint8Array): Promise<void> {
    try {
      for (let off = 0; off < data.length;) off += await this.#conn.write(data.subarray(off));
    } catch (err) {
      throw this.#lost(err instanceof Error ? err.message : String(err), err);
    }
  }

  /** The next bytes, or null at EOF (or after a local close). */
  async read(): Promise<Uint8Array | null> {
    if (this.#pending) {
      const p = this.#pending;
      this.#pending = undefined;
      return p;
    }
    // (A view, not a copy: each read has a buffer of its own.)
    const buf = new Uint8Array(READ_BYTES);
    const n = await this.readInto(buf);
    return n === null ? null : buf.subarray(0, n);
  }

  /** The next bytes into `buf`: how many, or null at EOF (or after a local close). */
  async readInto(buf: Uint8Array): Promise<number | null> {
    if (this.#pending) {
      const p = this.#pending;
      const n = Math.min(p.length, buf.length);
      buf.set(p.subarray(0, n));
      this.#pending = n < p.length ? p.subarray(n) : undefined;
      return n;
    }
    if (this.#closed) {
      if (this.#signal?.aborted) throw this.#signal.reason;
      return null;
    }
    try {
      return await this.#conn.read(buf);
    } catch (err) {
      if (this.#closed && !this.#signal?.aborted) return null;
      throw this.#lost(err instanceof Error ? err.message : String(err), err);
    }
  }

  async readHead(): Promise<ResponseHead> {
    let acc: Uint8Array = new Uint8Array(0);
    for (;;) {
      const chunk = await this.read();
      if (chunk === null) throw this.#lost("the daemon closed the connection without answering");
      acc = concatBytes([acc, chunk]);
      const end = findHeadEnd(acc);
      if (end >= 0) {
        if (end < acc.length) this.#pending = acc.slice(end);
        return parseResponseHead(acc.subarray(0, end - 4), badResponse);
      }
      if (acc.length > MAX_HEAD_BYTES) throw badResponse("response head too long");
    }
  }

  async #next(dec: BodyDecoder): Promise<Uint8Array[] | null> {
    const chunk = await this.read();
    if (chunk !== null) return dec.push(chunk);
    if (!dec.end()) throw this.#lost("the connection closed before the response ended");
    return null;
  }

  async readAll(dec: BodyDecoder): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    while (!dec.done) {
      const got = await this.#next(dec);
      if (got === null) break;
      parts.push(...got);
    }
    return concatBytes(parts.length ? parts : [new Uint8Array(0)]);
  }

  body(dec: BodyDecoder): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (ctl) => {
        try {
          for (;;) {
            const got = dec.done ? null : await this.#next(dec);
            if (got === null) {
              this.close();
              return ctl.close();
            }
            const parts = got.filter((p) => p.length > 0);
            for (const p of parts) ctl.enqueue(p);
            if (parts.length) return;
          }
        } catch (err) {
          this.close();
          throw err;
        }
      },
      cancel: () => this.close(),
    });
  }

  hijacked(head: ResponseHead): HijackedConn {
    let readable: ReadableStream<Uint8Array> | undefined;
    const next = () => this.read(), close = () => this.close();
    return {
      status: head.status,
      headers: head.headers,
      get readable() {
        return readable ??= new ReadableStream<Uint8Array>({
          pull: async (ctl) => {
            const chunk = await next();
            if (chunk === null) ctl.close();
            else ctl.enqueue(chunk);
          },
          cancel: close,
        }, { highWaterMark: 0 }); // (reads only when asked: `read` may be the reader instead)
      },
      read: (buf) => this.readInto(buf),
      write: (data) => this.write(data),
      closeWrite: async () => {
        if (this.#closed) return;
        try {
          await this.#conn.closeWrite();
        } catch (err) {
          if (!this.#closed) throw this.#lost("half-close failed", err);
        }
      },
      close,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    try {
      this.#conn.close();
    } catch {
      // already closed by the peer
    }
  }
}
