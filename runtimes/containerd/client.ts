/**
 * A small gRPC client for containerd over its Unix socket (@grpc/grpc-js with the protobufjs
 * descriptors of proto.ts). Every namespaced call carries the `containerd-namespace` header;
 * gRPC failures become DbgErrors that say what to do (protocols.md §2.1).
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { DbgError } from "../../lib/errors.ts";
import { method } from "./proto.ts";

/** Where a containerd socket usually is, in probe order (after --address and the env). */
export const DEFAULT_ADDRESSES = [
  "/run/containerd/containerd.sock",
  "/run/k3s/containerd/containerd.sock",
  "/var/run/docker/containerd/containerd.sock",
];

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
  #client: grpc.Client;

  constructor(address: string) {
    this.address = address;
    this.#client = new grpc.Client(`unix://${address}`, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    });
  }

  /**
   * One unary call: `service` is the full name (`containerd.services.tasks.v1.Tasks`).
   * `namespace` is required for everything but Version and Namespaces.
   */
  call(
    service: string,
    name: string,
    request: Message,
    opts: { namespace?: string; lease?: string; deadlineMs?: number } = {},
  ): Promise<Message> {
    const m = method(service, name);
    const md = new grpc.Metadata();
    if (opts.namespace) md.set("containerd-namespace", opts.namespace);
    // Resources created under a lease survive the garbage collector until the lease goes.
    if (opts.lease) md.set("containerd-lease", opts.lease);
    const deadline = opts.deadlineMs === 0 ? undefined : Date.now() + (opts.deadlineMs ?? 10_000);
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        m.path,
        (msg: Message) => Buffer.from(m.request.encode(m.request.fromObject(msg)).finish()),
        (buf: Buffer) =>
          m.response.toObject(m.response.decode(buf), {
            longs: Number,
            enums: String,
            defaults: true,
          }) as Message,
        request,
        md,
        { deadline },
        (err: grpc.ServiceError | null, res?: Message) => {
          if (err) reject(this.#error(err, name));
          else resolve(res ?? {});
        },
      );
    });
  }

  /** A server-streaming call, collected: for small blobs (manifests, image configs). */
  collect(
    service: string,
    name: string,
    request: Message,
    opts: { namespace?: string; deadlineMs?: number } = {},
  ): Promise<Message[]> {
    const m = method(service, name);
    const md = new grpc.Metadata();
    if (opts.namespace) md.set("containerd-namespace", opts.namespace);
    const deadline = Date.now() + (opts.deadlineMs ?? 30_000);
    return new Promise((resolve, reject) => {
      const out: Message[] = [];
      const call = this.#client.makeServerStreamRequest(
        m.path,
        (msg: Message) => Buffer.from(m.request.encode(m.request.fromObject(msg)).finish()),
        (buf: Buffer) => m.response.toObject(m.response.decode(buf), { longs: Number }) as Message,
        request,
        md,
        { deadline },
      );
      call.on("data", (msg: Message) => out.push(msg));
      call.on("error", (err: grpc.ServiceError) => reject(this.#error(err, name)));
      call.on("end", () => resolve(out));
    });
  }

  /**
   * Write one blob into the content store (Content.Write, a bidirectional stream): data in
   * chunks, each acknowledged, then a commit that makes containerd check size and digest.
   */
  writeContent(
    o: { namespace: string; lease: string; ref: string; digest: string; data: Uint8Array },
  ): Promise<void> {
    const m = method("containerd.services.content.v1.Content", "Write");
    const md = new grpc.Metadata();
    md.set("containerd-namespace", o.namespace);
    md.set("containerd-lease", o.lease);
    const call = this.#client.makeBidiStreamRequest(
      m.path,
      (msg: Message) => Buffer.from(m.request.encode(m.request.fromObject(msg)).finish()),
      (buf: Buffer) => m.response.toObject(m.response.decode(buf), { longs: Number }) as Message,
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
    return new Promise((resolve, reject) => {
      let i = 0;
      const next = () => {
        if (i === requests.length) return call.end();
        call.write(requests[i++]);
      };
      call.on("data", () => (i === requests.length ? call.end() : next()));
      call.on("error", (err: grpc.ServiceError) => reject(this.#error(err, "content write")));
      call.on("end", () => resolve());
      next();
    });
  }

  /** Close the channel. */
  close(): void {
    this.#client.close();
  }

  #error(err: grpc.ServiceError, what: string): ContainerdError {
    const detail = err.details || err.message;
    if (err.code === grpc.status.UNAVAILABLE) {
      const denied = /permission denied|EACCES/i.test(detail);
      return new ContainerdError(
        err.code,
        `Cannot connect to containerd at ${this.address}: ${denied ? "permission denied" : detail}`,
        {
          hint: denied
            ? "Run dbg with sudo: containerd's socket belongs to root"
            : "Start containerd, or pass its socket with --address (or CONTAINERD_ADDRESS)",
          cause: err,
        },
      );
    }
    return new ContainerdError(err.code, `containerd ${what}: ${detail}`, { cause: err });
  }
}
