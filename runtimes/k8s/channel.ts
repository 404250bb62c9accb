/**
 * The Kubernetes streaming protocol for attach and exec over a WebSocket (protocols.md §3.6):
 * every message is one channel byte and a payload. 0 stdin, 1 stdout, 2 stderr, 3 status (one
 * JSON `Status`), 4 resize (client → server). `v5.channel.k8s.io` adds 255 CLOSE: `[255, n]`
 * says "no more data on channel n", the only way to half-close stdin. v4 is the fallback.
 *
 * @module
 */

import type { OutputChunk } from "../../lib/adapter.ts";

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

/** One message: its channel byte and payload. */
export function encodeFrame(channel: number, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(payload.length + 1);
  out[0] = channel;
  out.set(payload, 1);
  return out;
}

/** Split a message into channel and payload (null for an empty message). */
export function decodeFrame(
  data: ArrayBuffer | Uint8Array,
): { channel: number; payload: Uint8Array } | null {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.length === 0) return null;
  return { channel: bytes[0], payload: bytes.subarray(1) };
}

/** The resize message body: Go decodes the keys case-insensitively. */
export function resizeFrame(rows: number, cols: number): Uint8Array<ArrayBuffer> {
  return encodeFrame(
    RESIZE,
    new TextEncoder().encode(JSON.stringify({ Width: cols, Height: rows })),
  );
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

/** How to open a streaming WebSocket. */
export interface SocketTarget {
  /** `wss://…/attach?…` or `/exec?…`. */
  url: string;
  headers: Record<string, string>;
  client?: Deno.HttpClient;
}

/** An open channel stream: output chunks, stdin, resize, and how it ended. */
export class ChannelSocket {
  readonly output: ReadableStream<OutputChunk>;
  /** Resolves when the socket closed, with the status channel's report if one came. */
  readonly closed: Promise<StreamStatus | undefined>;
  readonly protocol: string;
  #ws: WebSocket;
  #status?: StreamStatus;
  #received = 0;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.protocol = ws.protocol;
    const done = Promise.withResolvers<StreamStatus | undefined>();
    this.closed = done.promise;
    let ctl!: ReadableStreamDefaultController<OutputChunk>;
    let open = true;
    this.output = new ReadableStream<OutputChunk>({
      start: (c) => void (ctl = c),
      cancel: () => void (open = false), // nobody reads any more: drop what comes
    });
    let finished = false;
    const end = () => {
      if (finished) return;
      finished = true;
      if (open) {
        open = false;
        try {
          ctl.close();
        } catch { /* cancelled by the reader */ }
      }
      done.resolve(this.#status);
    };
    ws.onmessage = (ev) => {
      if (!(ev.data instanceof ArrayBuffer)) return;
      const f = decodeFrame(ev.data);
      if (!f || f.payload.length === 0) return; // the ready signal, or a keep-alive
      if (f.channel === STDOUT || f.channel === STDERR) {
        this.#received += f.payload.length;
        if (!open) return;
        try {
          // (A view: each message has a buffer of its own.)
          ctl.enqueue({ stream: f.channel, data: f.payload });
        } catch {
          open = false; // cancelled meanwhile
        }
      } else if (f.channel === STATUS) {
        this.#status = parseStatus(f.payload);
      }
    };
    ws.onclose = end;
    ws.onerror = end;
  }

  /** Open the socket; rejects with the browser-level reason when the upgrade fails. */
  static open(target: SocketTarget): Promise<ChannelSocket> {
    const ws = new WebSocket(target.url, {
      protocols: offeredProtocols(),
      headers: target.headers,
      client: target.client,
    });
    ws.binaryType = "arraybuffer";
    return new Promise((resolve, reject) => {
      ws.onopen = () => resolve(new ChannelSocket(ws));
      ws.onerror = (ev) => reject(new Error((ev as ErrorEvent).message || "WebSocket error"));
      ws.onclose = (ev) => reject(new Error(`WebSocket closed (${ev.code}) ${ev.reason}`));
    });
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
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(encodeFrame(channel, data));
  }

  /**
   * Resolves once at most `limit` bytes wait to be sent (or the socket closed): stdin from a
   * big file then flows at the connection's pace instead of piling up in memory.
   */
  async drained(limit = 4 << 20): Promise<void> {
    while (this.#ws.readyState === WebSocket.OPEN && this.#ws.bufferedAmount > limit) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  resize(rows: number, cols: number): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(resizeFrame(rows, cols));
  }

  /** End stdin (v5 CLOSE). Before v5 the only way is to close the socket, which we do not. */
  closeStdin(): void {
    if (this.canCloseStdin) this.send(CLOSE, new Uint8Array([STDIN]));
  }

  close(): void {
    try {
      this.#ws.close();
    } catch { /* already closed */ }
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
 * Why a WebSocket upgrade failed: the same URL as a plain HTTPS GET answers with the API
 * server's status (403 with the RBAC message, say). Undefined when that says nothing more.
 */
export async function upgradeRefusal(
  url: string,
  headers: Record<string, string>,
  client?: Deno.HttpClient,
): Promise<string | undefined> {
  try {
    const res = await fetch(url.replace(/^ws/, "http"), { headers, client });
    const text = await res.text();
    if (res.status === 403) return `forbidden (${statusMessage(text)})`;
    if (res.status === 401) return "the API server refused the credentials";
    if (res.status === 404) return "not found";
    if (res.status >= 500) return statusMessage(text);
  } catch {
    // nothing more to say
  }
  return undefined;
}

function statusMessage(text: string): string {
  try {
    return JSON.parse(text).message ?? text;
  } catch {
    return text.trim();
  }
}
