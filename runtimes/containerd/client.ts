/**
 * A small gRPC client for containerd over its Unix socket, with the descriptors of
 * proto.ts. Unary and server-streaming calls go over one HTTP/2 connection of dbg's own
 * (lib/http2.ts): loading @grpc/grpc-js cost about 85 ms of every run, and Deno's fetch ~7 ms.
 * The status is in the trailers, or in the headers of a trailers-only response (how grpc-go
 * reports most failures). Only the bidirectional Content.Write of a pull loads grpc-js.
 * Every namespaced call carries the `containerd-namespace` header; failures become DbgErrors
 * that say what to do (protocols.md §2.1).
 *
 * @module
 */

import type * as grpcTypes from "@grpc/grpc-js";
import { DbgError } from "../../lib/errors.ts";
import { Http2Connection, type Http2Response } from "../../lib/http2.ts";
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
  #h2?: Promise<Http2Connection>;
  #grpc?: grpcTypes.Client;

  constructor(address: string) {
    this.address = address;
  }

  /**
   * The connection, opened on first use and again after a failure. Deno.connect's own errors
   * (NotFound, PermissionDenied, ConnectionRefused) pass through, for the adapter to explain.
   */
  async connection(): Promise<Http2Connection> {
    const open = await this.#h2?.catch(() => undefined);
    if (open && !open.closed) return open;
    return await (this.#h2 = Http2Connection.open(this.address));
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
    let res: Http2Response;
    try {
      res = await (await this.connection()).request({
        method: "POST",
        path: m.path,
        body,
        headers,
        signal: ms ? AbortSignal.timeout(ms) : undefined,
      });
    } catch (e) {
      throw this.#unreachable(e);
    }
    const grpc = (k: string) => res.trailers.get(k) ?? res.headers.get(k);
    const status = Number(grpc("grpc-status") ?? (res.status === 200 ? 0 : 2));
    if (status !== 0) {
      const detail = decodeURIComponent(grpc("grpc-message") ?? `HTTP ${res.status}`);
      throw new ContainerdError(status, `containerd ${what}: ${detail}`);
    }
    const bytes = res.body;
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
    this.#h2?.then((c) => c.close(), () => {});
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
