/**
 * The Kubernetes streaming protocol for attach and exec over a WebSocket (protocols.md §3.6):
 * every message is one channel byte and a payload. 0 stdin, 1 stdout, 2 stderr, 3 status (one
 * JSON `Status`), 4 resize (client → server). `v5.channel.k8s.io` adds 255 CLOSE: `[255, n]`
 * says "no more data on channel n", the only way to half-close stdin. v4 is the fallback.
 *
 * @module
 */

import type { OutputChunk } from "../../lib/adapter.ts";
import { concatBytes } from "../../lib/http1.ts";
import type { ChunkSink, OutputFilter } from "./trailer.ts";
import { ChannelConn, type SocketTarget, UpgradeRefused } from "./websocket.ts";

/** Sub-protocols offered, newest first. */
export const CHANNEL_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/**
 * The protocols to offer: {@link CHANNEL_PROTOCOLS}, or the comma-separated list in
 * `DBG_K8S_CHANNELS` (to use an older protocol through a proxy that mishandles v5, and to test
 * the v4 path against a current API server).
 */
export function offeredProtocols(): string[] {
  const env = Deno.env.get("DBG_K8S_CHANNELS")?.split(",").map((p) => p.trim()).filter(Boolean);
  return env?.length ? env : CHANNEL_PROTOCOLS;
}

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const STATUS = 3;
export const RESIZE = 4;
export const CLOSE = 255;

/** The resize message's payload: Go decodes the keys case-insensitively. */
export function resizePayload(rows: number, cols: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ Width: cols, Height: rows }));
}

/** The end of a stream as the status channel reports it. */
export interface StreamStatus {
  status: string;
  message?: string;
  reason?: string;
  /** For exec: the command's exit code when it was not 0 (`NonZeroExitCode`). */
  exitCode?: number;
}

/** Parse a status-channel payload (a `metav1.Status`, JSON). */
export function parseStatus(payload: Uint8Array): StreamStatus {
  const text = new TextDecoder().decode(payload);
  try {
    const s = JSON.parse(text);
    const out: StreamStatus = {
      status: String(s.status ?? ""),
      message: s.message,
      reason: s.reason,
    };
    if (s.reason === "NonZeroExitCode") {
      const cause = (s.details?.causes ?? []).find((c: { reason?: string }) =>
        c.reason === "ExitCode"
      );
      if (cause) out.exitCode = Number(cause.message);
    }
    return out;
  } catch {
    return { status: "Failure", message: text };
  }
}

/**
 * An open channel stream: output chunks, stdin, resize, and how it ended. The output is read
 * from the connection only when it is wanted (websocket.ts): a slow reader holds the API server
 * back, and a chunk is valid until the next read. A filter sees every chunk as it is read, with
 * or without a reader (the entry script's marks: trailer.ts). Once the output is cancelled, the
 * rest is read and dropped until the socket closes.
 */
export class ChannelSocket {
  readonly output: ReadableStream<OutputChunk>;
  /** Resolves when the socket closed, with the status channel's report if one came. */
  readonly closed: Promise<StreamStatus | undefined>;
  readonly protocol: string;
  #conn: ChannelConn;
  #received = 0;
  /** Stops passing output on (the output was cancelled, or the socket closed). */
  #drop: () => void;

  private constructor(conn: ChannelConn, filter?: OutputFilter) {
    this.#conn = conn;
    this.protocol = conn.protocol;
    let open = true;
    let wanted: PromiseWithResolvers<void> | undefined;
    const taken = () => {
      wanted?.resolve();
      wanted = undefined;
    };
    let ctl!: ReadableStreamDefaultController<OutputChunk>;
    this.#drop = () => {
      open = false;
      taken();
    };
    this.output = new ReadableStream<OutputChunk>({
      start: (c) => void (ctl = c),
      pull: taken,
      cancel: this.#drop, // nobody reads any more: drop what comes
    }, { highWaterMark: 0 });
    let passed = false;
    const out: ChunkSink = {
      enqueue: (chunk) => {
        if (!open) return;
        passed = true;
        ctl.enqueue(chunk);
      },
    };
    this.closed = (async () => {
      const status: Uint8Array[] = [];
      try {
        for (let p; (p = await conn.next());) {
          if (p.channel === STATUS) status.push(p.data.slice());
          if (p.channel !== STDOUT && p.channel !== STDERR) continue;
          this.#received += p.data.length;
          const chunk = { stream: p.channel, data: p.data } as const;
          const next = (wanted ??= Promise.withResolvers()).promise;
          passed = false;
          if (filter) filter.transform(chunk, out);
          else out.enqueue(chunk);
          if (passed) await next; // the reader is done with it: the buffer may be reused
        }
      } catch {
        // a broken connection ends the stream as a close does
      }
      filter?.flush(out);
      if (open) ctl.close();
      open = false;
      return status.length ? parseStatus(concatBytes(status)) : undefined;
    })();
  }

  /**
   * Open the socket. Fails with {@link UpgradeRefused} when the API server answers with an
   * error (see {@link refusal}), and with the connection's error when there is none.
   */
  static async open(target: SocketTarget, filter?: OutputFilter): Promise<ChannelSocket> {
    return new ChannelSocket(await ChannelConn.open(target, offeredProtocols()), filter);
  }

  /** Bytes of output received so far. */
  get received(): number {
    return this.#received;
  }

  /** Whether stdin can be half-closed (v5). */
  get canCloseStdin(): boolean {
    return this.protocol === CHANNEL_PROTOCOLS[0];
  }

  send(channel: number, data: Uint8Array): void {
    this.#conn.send(channel, data);
  }

  /**
   * Resolves once at most `limit` bytes wait to be sent (or the socket closed): stdin from a
   * big file then flows at the connection's pace instead of piling up in memory.
   */
  drained(limit = 4 << 20): Promise<void> {
    return this.#conn.drained(limit);
  }

  resize(rows: number, cols: number): void {
    this.#conn.send(RESIZE, resizePayload(rows, cols));
  }

  /** End stdin (v5 CLOSE). Before v5 the only way is to close the socket, which we do not. */
  closeStdin(): void {
    if (this.canCloseStdin) this.send(CLOSE, new Uint8Array([STDIN]));
  }

  /** Close the socket; the output ends, and what it held back is dropped. */
  close(): void {
    this.#drop();
    this.#conn.close();
  }
}

/**
 * Whether an error of the API server says that it could not reach the kubelet (an
 * `InternalError` such as `error sending request: … dial tcp …: connect: connection refused`).
 */
export function unreachableNode(message: string | undefined): boolean {
  return /error dialing backend|error sending request|dial tcp|no route to host|i\/o timeout/i
    .test(message ?? "");
}

/**
 * Why a WebSocket could not be opened: the API server's refusal (403 with the RBAC message, say),
 * or the connection's error.
 */
export function refusal(e: unknown): string {
  if (!(e instanceof UpgradeRefused)) return e instanceof Error ? e.message : String(e);
  const why = e.body ? statusMessage(e.body) : `HTTP ${e.status}`;
  if (e.status === 403) return `forbidden (${why})`;
  if (e.status === 401) return "the API server refused the credentials";
  if (e.status === 404) return "not found";
  return why;
}

function statusMessage(text: string): string {
  try {
    return JSON.parse(text).message ?? text;
  } catch {
    return text.trim();
  }
}
