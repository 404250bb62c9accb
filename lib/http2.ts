/**
 * HTTP/2 with prior knowledge (h2c, RFC 9113) over a Unix socket, for containerd's gRPC API
 * (runtimes/containerd/client.ts): requests with a whole body, answered with a whole body and
 * trailers, many at once on one connection. Deno's fetch speaks it too, but its first request
 * cost 7-9 ms of every run (its Headers, Request and Response classes load then), and each
 * later one twice what one costs here (containerd's Version, warm: 0.32-0.38 ms, 0.16-0.18).
 *
 * Flow control: this side announces windows that a session never fills (it acknowledges what
 * it has read once half the connection's window is used), and honours the server's when it
 * sends. No server push, no priorities.
 *
 * @module
 */

import { encodeHeaders, type HeaderList, HpackDecoder } from "./hpack.ts";
import { appendHeader, concatBytes, type HeaderMap } from "./http1.ts";

/** A whole answer: the status, the headers, the body and the trailers. */
export interface Http2Response {
  status: number;
  headers: HeaderMap;
  body: Uint8Array;
  trailers: HeaderMap;
}

/** One request: POST-like, with its body whole. */
export interface Http2Request {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array;
  /** Ends the request (the stream is reset) and rejects it with the signal's reason. */
  signal?: AbortSignal;
}

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const Type = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
const END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY = 0x20;
const SETTINGS_ENABLE_PUSH = 2, SETTINGS_INITIAL_WINDOW_SIZE = 4, SETTINGS_MAX_FRAME_SIZE = 5;
const MAX_WINDOW = 2 ** 31 - 1;
const CANCEL = 8;

/** Encodes one frame: the 9-byte header, then the payload. */
function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array = new Uint8Array(),
) {
  const out = new Uint8Array(9 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length << 8 | type);
  out[4] = flags;
  view.setUint32(5, stream);
  out.set(payload, 9);
  return out;
}

/** A payload of one 32-bit number (WINDOW_UPDATE, RST_STREAM). */
function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

/** The settings this side announces: no push, and a stream window never filled. */
const SETTINGS = (() => {
  const p = new Uint8Array(12);
  const v = new DataView(p.buffer);
  v.setUint16(0, SETTINGS_ENABLE_PUSH), v.setUint32(2, 0);
  v.setUint16(6, SETTINGS_INITIAL_WINDOW_SIZE), v.setUint32(8, MAX_WINDOW);
  return p;
})();

interface Stream {
  id: number;
  /** What the server lets this side send on the stream (its window). */
  window: number;
  status?: number;
  headers?: HeaderMap;
  trailers: HeaderMap;
  body: Uint8Array[];
  done: PromiseWithResolvers<Http2Response>;
}

/** One HTTP/2 connection: open it, send requests, close it. */
export class Http2Connection {
  readonly #conn: Deno.Conn;
  readonly #authority: string;
  readonly #streams = new Map<number, Stream>();
  readonly #hpack = new HpackDecoder();
  #nextId = 1;
  #writing = Promise.resolve();
  /** The connection's send window, the server's initial stream window and frame size. */
  #window = 65_535;
  #initialWindow = 65_535;
  #maxFrame = 16_384;
  /** Bytes read since the connection's window was last topped up. */
  #unacked = 0;
  #wakeSenders: (() => void)[] = [];
  /** A header block that continues in CONTINUATION frames. */
  #partial?: { stream: number; endStream: boolean; parts: Uint8Array[] };
  /** Why the connection failed or was closed; or why it takes no new streams (GOAWAY). */
  #error?: Error;
  #goingAway?: Error;

  private constructor(conn: Deno.Conn, authority: string) {
    this.#conn = conn;
    this.#authority = authority;
  }

  /** Connects to the socket at `path` (Deno.connect's errors as they are). */
  static async open(path: string, authority = "localhost"): Promise<Http2Connection> {
    const conn = await Deno.connect({ transport: "unix", path });
    const c = new Http2Connection(conn, authority);
    c.#write(concatBytes([
      PREFACE,
      frame(Type.SETTINGS, 0, 0, SETTINGS),
      frame(Type.WINDOW_UPDATE, 0, 0, u32(MAX_WINDOW - 65_535)),
    ]));
    conn.unref();
    c.#read();
    return c;
  }

  /** Whether new requests need a new connection (this one failed, closed or is going away). */
  get closed(): boolean {
    return (this.#error ?? this.#goingAway) !== undefined;
  }

  /** Sends a request and waits for its whole answer. */
  async request(r: Http2Request): Promise<Http2Response> {
    if (this.#error ?? this.#goingAway) throw this.#error ?? this.#goingAway;
    r.signal?.throwIfAborted();
    const id = this.#nextId;
    this.#nextId += 2;
    const stream: Stream = {
      id,
      window: this.#initialWindow,
      trailers: new Map(),
      body: [],
      done: Promise.withResolvers(),
    };
    this.#streams.set(id, stream);
    this.#conn.ref();
    const abort = () => {
      if (!this.#streams.delete(id)) return;
      this.#write(frame(Type.RST_STREAM, 0, id, u32(CANCEL)));
      stream.done.reject(r.signal!.reason);
    };
    r.signal?.addEventListener("abort", abort, { once: true });
    try {
      const head: HeaderList = [
        [":method", r.method],
        [":scheme", "http"],
        [":authority", this.#authority],
        [":path", r.path],
        ...Object.entries(r.headers).map(([k, v]): [string, string] => [k.toLowerCase(), v]),
      ];
      for (const [k, v] of head) {
        if (/[\r\n\0]/.test(k + v)) throw new TypeError(`A header with a line break: ${k}`);
      }
      this.#sendHeaders(id, encodeHeaders(head), r.body.length === 0);
      await this.#sendBody(stream, r.body);
      return await stream.done.promise;
    } finally {
      r.signal?.removeEventListener("abort", abort);
      this.#streams.delete(id);
      if (this.#streams.size === 0) this.#conn.unref();
    }
  }

  /** Closes the connection; what is still waiting fails. */
  close(): void {
    this.#fail(new Error("HTTP/2 connection closed"));
  }

  #sendHeaders(id: number, block: Uint8Array, endStream: boolean): void {
    const frames = [];
    for (let at = 0; at === 0 || at < block.length; at += this.#maxFrame) {
      const part = block.subarray(at, at + this.#maxFrame);
      const last = at + this.#maxFrame >= block.length;
      frames.push(
        at === 0
          ? frame(
            Type.HEADERS,
            (last ? END_HEADERS : 0) | (endStream ? END_STREAM : 0),
            id,
            part,
          )
          : frame(Type.CONTINUATION, last ? END_HEADERS : 0, id, part),
      );
    }
    // One write, so that no other frame comes between a HEADERS and its CONTINUATIONs.
    this.#write(concatBytes(frames));
  }

  /** Sends the body in DATA frames as the server's windows allow. */
  async #sendBody(stream: Stream, body: Uint8Array): Promise<void> {
    for (let at = 0; at < body.length;) {
      const n = Math.min(body.length - at, this.#window, stream.window, this.#maxFrame);
      if (n <= 0) {
        await new Promise<void>((wake) => this.#wakeSenders.push(wake));
        if (this.#error) throw this.#error;
        if (!this.#streams.has(stream.id)) return; // reset meanwhile: its promise says why
        continue;
      }
      this.#window -= n, stream.window -= n;
      const end = at + n === body.length;
      this.#write(frame(Type.DATA, end ? END_STREAM : 0, stream.id, body.subarray(at, at + n)));
      at += n;
    }
  }

  /** Queues bytes for the socket, in order; a failure fails the connection. */
  #write(bytes: Uint8Array): void {
    this.#writing = this.#writing.then(async () => {
      if (this.#error) return;
      for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
    }).catch((e) => this.#fail(e));
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    let pending: Uint8Array = new Uint8Array();
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) throw new Error("the server closed the HTTP/2 connection");
        pending = pending.length ? concatBytes([pending, buf.subarray(0, n)]) : buf.slice(0, n);
        let at = 0;
        while (pending.length - at >= 9) {
          const view = new DataView(pending.buffer, pending.byteOffset + at);
          const len = view.getUint32(0) >>> 8;
          if (pending.length - at < 9 + len) break;
          const type = pending[at + 3], flags = pending[at + 4];
          const id = view.getUint32(5) & 0x7fffffff;
          this.#frame(type, flags, id, pending.subarray(at + 9, at + 9 + len));
          at += 9 + len;
        }
        pending = pending.subarray(at);
      }
    } catch (e) {
      this.#fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.#partial && type !== Type.CONTINUATION) {
      throw new Error("HTTP/2: a header block without its CONTINUATION");
    }
    const stream = this.#streams.get(id);
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    switch (type) {
      case Type.DATA: {
        this.#consumed(payload.length);
        if (stream) stream.body.push(unpadded(payload, flags).slice());
        if (flags & END_STREAM) this.#finish(stream);
        return;
      }
      case Type.HEADERS: {
        let block = unpadded(payload, flags);
        if (flags & PRIORITY) block = block.subarray(5);
        this.#partial = { stream: id, endStream: (flags & END_STREAM) !== 0, parts: [block] };
        if (flags & END_HEADERS) this.#headerBlock();
        return;
      }
      case Type.CONTINUATION:
        if (this.#partial?.stream !== id) throw new Error("HTTP/2: a stray CONTINUATION");
        this.#partial.parts.push(payload);
        if (flags & END_HEADERS) this.#headerBlock();
        return;
      case Type.RST_STREAM:
        if (stream) {
          this.#streams.delete(id);
          stream.done.reject(
            new Error(`HTTP/2 stream reset by the server (code ${view.getUint32(0)})`),
          );
        }
        return;
      case Type.SETTINGS:
        if (flags & ACK) return;
        for (let at = 0; at + 6 <= payload.length; at += 6) {
          const key = view.getUint16(at), value = view.getUint32(at + 2);
          if (key === SETTINGS_INITIAL_WINDOW_SIZE) {
            for (const s of this.#streams.values()) s.window += value - this.#initialWindow;
            this.#initialWindow = value;
          } else if (key === SETTINGS_MAX_FRAME_SIZE) {
            this.#maxFrame = value;
          }
        }
        this.#write(frame(Type.SETTINGS, ACK, 0));
        return this.#wake();
      case Type.PING:
        if (!(flags & ACK)) this.#write(frame(Type.PING, ACK, 0, payload.slice()));
        return;
      case Type.GOAWAY: {
        // Streams above the last one the server will answer fail now; the rest go on.
        const last = view.getUint32(0) & 0x7fffffff;
        const code = view.getUint32(4);
        const why = new Error(`the server is closing the HTTP/2 connection (code ${code})`);
        this.#goingAway ??= why;
        for (const s of this.#streams.values()) {
          if (s.id > last) this.#streams.delete(s.id), s.done.reject(why);
        }
        return this.#wake();
      }
      case Type.WINDOW_UPDATE: {
        const n = view.getUint32(0) & 0x7fffffff;
        if (id === 0) this.#window += n;
        else if (stream) stream.window += n;
        return this.#wake();
      }
      case Type.PUSH_PROMISE:
        throw new Error("HTTP/2: a push promise, though push is off");
    }
  }

  /** A whole header block: the stream's headers, or its trailers. */
  #headerBlock(): void {
    const { stream: id, endStream, parts } = this.#partial!;
    this.#partial = undefined;
    // Decoded even for a stream that is gone: the decoder's table must see every block.
    const fields = this.#hpack.decode(concatBytes(parts));
    const stream = this.#streams.get(id);
    if (stream) {
      const into = stream.headers ? stream.trailers : (stream.headers = new Map());
      for (const [name, value] of fields) {
        if (name === ":status") stream.status = Number(value);
        else appendHeader(into, name, value);
      }
    }
    if (endStream) this.#finish(stream);
  }

  #finish(stream: Stream | undefined): void {
    if (!stream) return;
    this.#streams.delete(stream.id);
    stream.done.resolve({
      status: stream.status ?? 0,
      headers: stream.headers ?? new Map(),
      body: concatBytes(stream.body),
      trailers: stream.trailers,
    });
  }

  /** Counts what was read against the connection's window, and tops it up at half. */
  #consumed(n: number): void {
    this.#unacked += n;
    if (this.#unacked < MAX_WINDOW / 2) return;
    this.#write(frame(Type.WINDOW_UPDATE, 0, 0, u32(this.#unacked)));
    this.#unacked = 0;
  }

  #wake(): void {
    for (const wake of this.#wakeSenders.splice(0)) wake();
  }

  #fail(e: Error): void {
    this.#error ??= e;
    for (const s of this.#streams.values()) s.done.reject(e);
    this.#streams.clear();
    this.#wake();
    try {
      this.#conn.close();
    } catch {
      // closed already
    }
  }
}

/** A DATA or HEADERS payload without its padding (RFC 9113 §6.1). */
function unpadded(payload: Uint8Array, flags: number): Uint8Array {
  if (!(flags & PADDED)) return payload;
  return payload.subarray(1, payload.length - payload[0]);
}
