/**
 * A small gRPC client for containerd over its Unix socket, with the descriptors of
 * proto.ts. Unary and server-streaming calls go over Deno's own fetch, which speaks HTTP/2
 * (h2c) on a Unix socket: loading @grpc/grpc-js cost about 85 ms of every run. containerd
 * (grpc-go) reports a failed call as a trailers-only response, so its status is in the headers
 * fetch shows. Only the bidirectional Content.Write of a pull loads grpc-js.
 * Every namespaced call carries the `containerd-namespace` header; failures become DbgErrors
 * that say what to do (protocols.md §2.1).
 *
 * @module
 */

import type * as grpcTypes from "@grpc/grpc-js";
import { DbgError } from "../../lib/errors.ts";
import { type Method, method } from "./proto.ts";

/** Decoded messages are plain objects with snake_case fields, as in containerd's protos. */
export type Message = Record<string, unknown>;

/** A containerd API error with its gRPC status code (5 NOT_FOUND, 14 UNAVAILABLE, …). */
export class ContainerdError extends DbgError {
  readonly code: number;
  constructor(code: number, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts);
    this.name = "ContainerdError";
    this.code = code;
  }
}

/** gRPC status codes dbg reacts to. */
export const Code = { NOT_FOUND: 5, FAILED_PRECONDITION: 9, UNIMPLEMENTED: 12, UNAVAILABLE: 14 };

/** A connection to one containerd socket. */
export class ContainerdClient {
  readonly address: string;
  #http: Deno.HttpClient;
  #grpc?: grpcTypes.Client;

  constructor(address: string) {
    this.address = address;
    this.#http = Deno.createHttpClient({
      proxy: { transport: "unix", path: address },
      http1: false,
      http2: true,
    } as Deno.CreateHttpClientOptions);
  }

  /** POST one framed request and return the response's gRPC messages. */
  async #post(
    m: Method,
    what: string,
    request: Message,
    opts: { namespace?: string; lease?: string; deadlineMs?: number },
  ): Promise<Message[]> {
    const payload = m.encode(request);
    const body = new Uint8Array(5 + payload.length);
    new DataView(body.buffer).setUint32(1, payload.length);
    body.set(payload, 5);
    const headers: Record<string, string> = { "content-type": "application/grpc", te: "trailers" };
    if (opts.namespace) headers["containerd-namespace"] = opts.namespace;
    // Resources created under a lease survive the garbage collector until the lease goes.
    if (opts.lease) headers["containerd-lease"] = opts.lease;
    const ms = opts.deadlineMs ?? 10_000;
    let res: Response;
    let bytes: Uint8Array;
    try {
      res = await fetch(`http://containerd${m.path}`, {
        method: "POST",
        body,
        headers,
        client: this.#http,
        signal: ms ? AbortSignal.timeout(ms) : undefined,
      });
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      throw this.#unreachable(e);
    }
    const status = Number(res.headers.get("grpc-status") ?? 0);
    if (status !== 0 || !res.ok) {
      const detail = decodeURIComponent(res.headers.get("grpc-message") ?? `HTTP ${res.status}`);
      throw new ContainerdError(status || 2, `containerd ${what}: ${detail}`);
    }
    const out: Message[] = [];
    for (let off = 0; off + 5 <= bytes.length;) {
      const len = new DataView(bytes.buffer, bytes.byteOffset + off + 1, 4).getUint32(0);
      out.push(m.decode(bytes.subarray(off + 5, off + 5 + len)));
      off += 5 + len;
    }
    return out;
  }

  /**
   * One unary call: `service` is the full name (`containerd.services.tasks.v1.Tasks`).
   * `namespace` is required for everything but Version and Namespaces. `deadlineMs: 0` waits
   * as long as it takes (Tasks.Wait).
   */
  async call(
    service: string,
    name: string,
    request: Message,
    opts: { namespace?: string; lease?: string; deadlineMs?: number } = {},
  ): Promise<Message> {
    return (await this.#post(method(service, name), name, request, opts))[0] ?? {};
  }

  /** A server-streaming call, collected: for small blobs (manifests, image configs). */
  collect(
    service: string,
    name: string,
    request: Message,
    opts: { namespace?: string; deadlineMs?: number } = {},
  ): Promise<Message[]> {
    return this.#post(method(service, name), name, request, { deadlineMs: 30_000, ...opts });
  }

  /**
   * Write one blob into the content store (Content.Write, a bidirectional stream): data in
   * chunks, each acknowledged, then a commit that makes containerd check size and digest.
   */
  async writeContent(
    o: { namespace: string; lease: string; ref: string; digest: string; data: Uint8Array },
  ): Promise<void> {
    // (node:buffer too only here: it loads Node's compatibility layer, ~8 ms of every run.)
    const [grpc, { Buffer }] = await Promise.all([import("@grpc/grpc-js"), import("node:buffer")]);
    this.#grpc ??= new grpc.Client(`unix://${this.address}`, grpc.credentials.createInsecure());
    const m = method("containerd.services.content.v1.Content", "Write");
    const md = new grpc.Metadata();
    md.set("containerd-namespace", o.namespace);
    md.set("containerd-lease", o.lease);
    const call = this.#grpc.makeBidiStreamRequest(
      m.path,
      (msg: Message) => Buffer.from(m.encode(msg)),
      (buf: Uint8Array) => m.decode(buf),
      md,
      { deadline: Date.now() + 300_000 },
    );
    const CHUNK = 1 << 20;
    const requests: Message[] = [];
    for (let off = 0; off < o.data.length; off += CHUNK) {
      requests.push({
        action: 1,
        ref: o.ref,
        offset: off,
        data: o.data.subarray(off, off + CHUNK),
      });
    }
    requests.push({
      action: 2,
      ref: o.ref,
      total: o.data.length,
      expected: o.digest,
      offset: o.data.length,
    });
    return await new Promise((resolve, reject) => {
      let i = 0;
      const next = () => {
        if (i === requests.length) return call.end();
        call.write(requests[i++]);
      };
      call.on("data", () => (i === requests.length ? call.end() : next()));
      call.on("error", (err: grpcTypes.ServiceError) => {
        reject(
          new ContainerdError(err.code, `containerd content write: ${err.details || err.message}`),
        );
      });
      call.on("end", () => resolve());
      next();
    });
  }

  /** Close the connections. */
  close(): void {
    this.#http.close();
    this.#grpc?.close();
  }

  #unreachable(e: unknown): ContainerdError {
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : "";
    const detail = e instanceof Error ? `${e.message}${cause}` : String(e);
    if (e instanceof DOMException && e.name === "TimeoutError") {
      return new ContainerdError(4, `containerd did not answer in time at ${this.address}`, {
        hint: "Check that containerd is healthy (ctr version)",
        cause: e,
      });
    }
    const denied = /permission denied|EACCES|os error 13/i.test(detail);
    return new ContainerdError(
      Code.UNAVAILABLE,
      `Cannot connect to containerd at ${this.address}: ${denied ? "permission denied" : detail}`,
      {
        hint: denied
          ? "Run dbg with sudo: containerd's socket belongs to root"
          : "Start containerd, or pass its socket with --address (or CONTAINERD_ADDRESS)",
        cause: e,
      },
    );
  }
}
