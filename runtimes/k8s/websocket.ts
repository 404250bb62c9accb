/**
 * A WebSocket client of dbg's own (RFC 6455) for the attach and exec streams, whose messages
 * each start with a channel byte (channel.ts).
 *
 * Deno's `WebSocket` hands every message over as an event with a buffer of its own, whether
 * anyone wants it yet or not: output that comes faster than the terminal takes it piles up in
 * memory (233 MiB for a 256 MiB stream in the bench), and each of its ~10,000 messages costs an
 * event, a copy and a write. Here the connection is read only when output is wanted, so TCP
 * holds the API server back; it is read into one buffer, whose pieces of output are views valid
 * until the next read (as `OutputChunk` allows); and the successive messages of one channel that
 * the buffer holds are joined into one piece.
 *
 * The connection comes from dial.ts: a kept one, or a new one (through the proxy, if any).
 *
 * @module
 */

import { encodeRequestHead } from "../../lib/http1.ts";
import { writeAll } from "../../lib/streams.ts";
import { exchange, hangUp, type Inbox, MIN_READ, type TlsPems } from "./dial.ts";

/** How to open a WebSocket. */
export interface SocketTarget {
  /** `wss://…/attach?…` or `/exec?…`. */
  url: string;
  headers: Record<string, string>;
  tls: TlsPems;
}

/** The server answered the upgrade with another status: its code and body (a `Status`). */
export class UpgradeRefused extends Error {
  constructor(readonly status: number, readonly body: string) {
    super(`HTTP ${status} instead of a WebSocket`);
    this.name = "UpgradeRefused";
  }
}

/** Part of one message's payload after its channel byte. */
export interface ChannelPiece {
  channel: number;
  /** A view of the read buffer, valid until the next read. */
  data: Uint8Array;
}

const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const OP_CLOSE = 8;
const OP_PING = 9;
const OP_PONG = 10;
const OP_BINARY = 2;

/** A WebSocket whose messages each start with a channel byte. */
export class ChannelConn {
  readonly protocol: string;
  #in: Inbox;
  /** Payload bytes of the current data frame not read yet. */
  #left = 0;
  /** The current message's channel; -1 before its first byte. */
  #channel = -1;
  #ended = false;
  /** A close frame has been sent (ours, or the echo of the server's). */
  #closing = false;
  /** The piece being gathered: `buf[from, to)` of one channel. */
  #piece?: { channel: number; from: number; to: number };
  #writing: Promise<unknown> = Promise.resolve();
  #pending = 0;

  private constructor(inbox: Inbox, protocol: string) {
    this.#in = inbox;
    this.protocol = protocol;
  }

  /**
   * Connect and upgrade, offering `protocols`. Throws {@link UpgradeRefused} when the server
   * answers with another status, and the connection's error when it cannot be made.
   */
  static async open(target: SocketTarget, protocols: string[]): Promise<ChannelConn> {
    const url = new URL(target.url);
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const { link: { inbox }, head } = await exchange(
      url,
      encodeRequestHead("GET", `${url.pathname}${url.search}`, {
        Host: url.host,
        Upgrade: "websocket",
        Connection: "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": protocols.join(", "),
        ...target.headers,
      }),
      target.tls,
    );
    try {
      if (head.status !== 101) {
        throw new UpgradeRefused(head.status, await inbox.body(head.headers));
      }
      const digest = await crypto.subtle.digest(
        "SHA-1",
        new TextEncoder().encode(key + ACCEPT_GUID),
      );
      const protocol = head.headers.get("sec-websocket-protocol") ?? "";
      if (
        head.headers.get("sec-websocket-accept") !==
          btoa(String.fromCharCode(...new Uint8Array(digest)))
      ) {
        throw new Error("the server's WebSocket handshake is not valid");
      }
      if (!protocols.includes(protocol)) {
        throw new Error(`the server chose no offered protocol (${protocol || "none"})`);
      }
      return new ChannelConn(inbox, protocol);
    } catch (e) {
      hangUp(inbox);
      throw e;
    }
  }

  /**
   * The next piece of output: what the buffer holds of one channel's messages, joined. Null once
   * the socket closed. A frame that a read cut off is read to its end first (its rest is on the
   * way: the API server writes a message at once), as long as the buffer has room: one TLS read
   * brings one record of at most 16 KiB, and a message is up to 32 KiB. Pings are answered here.
   */
  async next(): Promise<ChannelPiece | null> {
    for (;;) {
      this.#parse();
      const p = this.#piece;
      const inbox = this.#in;
      const cut = this.#left > 0 && inbox.start === inbox.end &&
        inbox.buf.length - inbox.end >= MIN_READ;
      if (p && (this.#ended || !cut)) {
        this.#piece = undefined;
        return { channel: p.channel, data: inbox.buf.subarray(p.from, p.to) };
      }
      if (this.#ended || !(await inbox.fill())) {
        this.#ended = true;
        if (!this.#piece) return null;
      }
    }
  }

  /**
   * Frames from what is in the buffer into {@link #piece}, up to the first byte that cannot join
   * it. (With a piece under way the buffer does not move: see next().)
   */
  #parse(): void {
    const inbox = this.#in;
    const b = inbox.buf;
    while (!this.#ended) {
      if (this.#left === 0) {
        const frame = frameHead(b, inbox.start, inbox.end);
        if (!frame) break;
        if (frame.opcode >= OP_CLOSE) {
          const end = frame.at + frame.length;
          if (end > inbox.end) break;
          inbox.start = end;
          this.#control(frame.opcode, b.slice(frame.at, end));
          continue;
        }
        inbox.start = frame.at;
        if (frame.opcode !== 0) this.#channel = -1; // a new message
        this.#left = frame.length;
        continue;
      }
      if (inbox.start === inbox.end) break;
      const p = this.#piece;
      if (this.#channel < 0) {
        if (p && b[inbox.start] !== p.channel) break;
        this.#channel = b[inbox.start++];
        this.#left--;
        continue;
      }
      if (p && this.#channel !== p.channel) break;
      const n = Math.min(this.#left, inbox.end - inbox.start);
      if (!p) this.#piece = { channel: this.#channel, from: inbox.start, to: inbox.start + n };
      else {
        if (p.to !== inbox.start) b.copyWithin(p.to, inbox.start, inbox.start + n); // over heads
        p.to += n;
      }
      inbox.start += n;
      this.#left -= n;
    }
  }

  #control(opcode: number, payload: Uint8Array): void {
    if (opcode === OP_PING) this.#write(frame(OP_PONG, payload));
    else if (opcode === OP_CLOSE) {
      this.#ended = true;
      this.close(payload.subarray(0, 2));
    }
  }

  /** Send one message on `channel` (queued; see {@link drained}). */
  send(channel: number, data: Uint8Array): void {
    if (!this.#ended) this.#write(frame(OP_BINARY, new Uint8Array([channel]), data));
  }

  /** Resolves once at most `limit` bytes wait to be sent. */
  async drained(limit: number): Promise<void> {
    while (this.#pending > limit) await this.#writing;
  }

  /** Close: a close frame (code 1000, or the one echoed), then the connection. */
  close(code: Uint8Array = new Uint8Array([0x03, 0xe8])): void {
    this.#ended = true;
    if (this.#closing) return;
    this.#closing = true;
    this.#write(frame(OP_CLOSE, code)).finally(() => hangUp(this.#in));
  }

  #write(data: Uint8Array): Promise<unknown> {
    this.#pending += data.length;
    this.#writing = this.#writing
      .then(() => writeAll(this.#in.conn, data))
      .catch(() => {}) // a broken connection: the reader sees its end
      .finally(() => (this.#pending -= data.length));
    return this.#writing;
  }
}

/** A frame head at `at`: its opcode, payload length, and where the payload starts. */
function frameHead(
  b: Uint8Array,
  at: number,
  end: number,
): { opcode: number; length: number; at: number } | undefined {
  if (end - at < 2) return undefined;
  if (b[at + 1] & 0x80) throw new Error("the server masked a WebSocket frame");
  const opcode = b[at] & 0x0f;
  let length = b[at + 1] & 0x7f;
  let head = 2;
  if (length === 126) {
    head = 4;
    if (end - at < head) return undefined;
    length = (b[at + 2] << 8) | b[at + 3];
  } else if (length === 127) {
    head = 10;
    if (end - at < head) return undefined;
    length = 0;
    for (let i = 2; i < 10; i++) length = length * 256 + b[at + i];
  }
  return { opcode, length, at: at + head };
}

/**
 * One masked frame (a client's frames must be): FIN, the opcode, the length, a random key, and
 * the parts' bytes, masked a word at a time where the payload starts on a word boundary.
 */
export function frame(opcode: number, ...parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const head = (n < 126 ? 2 : n < 65536 ? 4 : 10) + 4;
  const pad = (4 - (head % 4)) % 4;
  const mem = new Uint8Array(pad + head + n);
  const f = mem.subarray(pad);
  f[0] = 0x80 | opcode;
  if (n < 126) f[1] = 0x80 | n;
  else if (n < 65536) {
    f[1] = 0x80 | 126;
    f[2] = n >> 8;
    f[3] = n & 0xff;
  } else {
    f[1] = 0x80 | 127;
    new DataView(f.buffer, f.byteOffset).setBigUint64(2, BigInt(n));
  }
  const key = crypto.getRandomValues(new Uint8Array(4));
  f.set(key, head - 4);
  let at = head;
  for (const p of parts) {
    f.set(p, at);
    at += p.length;
  }
  const words = new Uint32Array(mem.buffer, pad + head, n >>> 2);
  const k = new Uint32Array(key.buffer)[0];
  for (let i = 0; i < words.length; i++) words[i] ^= k;
  for (let i = n & ~3; i < n; i++) f[head + i] ^= key[i & 3];
  return f;
}
