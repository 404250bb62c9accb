/**
 * Pure Docker wire parsing for the Docker transport (HTTP/1.1 itself is lib/http1.ts): errors,
 * API versions, bodies, and the multiplexed frames of a non-TTY attach. No I/O here (the attach
 * output reads through a function it is given), so all of it is unit-tested with plain bytes.
 *
 * @module
 */

import type { OutputChunk } from "../../lib/adapter.ts";
import { DbgError } from "../../lib/errors.ts";
import { concatBytes, type ResponseHead } from "../../lib/http1.ts";

/** The longest response head we accept; Docker's are well under 1 KiB. */
export const MAX_HEAD_BYTES = 64 * 1024;

/** How errors name the engine (Docker's or Podman's; runtimes/docker/engine.ts). */
type EngineNames = { service: string; cli: string };

/**
 * The connection to the daemon ended or broke in the middle of a response. `engine` names it;
 * the default is Docker's daemon.
 */
export function lostConnection(
  detail: string,
  cause?: unknown,
  engine?: EngineNames,
): DbgError {
  const service = engine?.service ?? "the Docker daemon";
  const cli = engine?.cli ?? "docker";
  return new DbgError(`Lost the connection to ${service}: ${detail}`, {
    hint: `Check that ${service} is still running (${cli} info), then run dbg again`,
    cause,
  });
}

/** The daemon answered something that is not valid HTTP or Docker framing. */
export function badResponse(detail: string, cause?: unknown): DbgError {
  return new DbgError(`Bad response from the engine: ${detail}`, {
    hint: "Check that -H/--host points at a Docker or Podman API socket, and run with --debug",
    cause,
  });
}

/** "the Docker daemon" → "The Docker daemon", to start a sentence. */
export function capitalized(s: string): string {
  return s[0].toUpperCase() + s.slice(1);
}

/** A non-2xx answer from the daemon. `message` is the daemon's own text. */
export class DockerApiError extends DbgError {
  /** The HTTP status, e.g. 404 for "No such container". */
  readonly status: number;

  constructor(status: number, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts);
    this.name = "DockerApiError";
    this.status = status;
  }
}

/** The oldest API dbg speaks: Docker 19.03 (the daemon's own default minimum). */
export const MIN_API_VERSION = "1.40";
/** The newest API dbg asks for; newer daemons still serve it. */
export const MAX_API_VERSION = "1.47";

/**
 * Picks the API version from a `/_ping` response like the Go client: min(daemon's
 * `Api-Version`, MAX_API_VERSION), MAX when the header is missing, an error below MIN.
 * `where` names the daemon in messages.
 */
export function pickApiVersion(ping: ResponseHead, where: string): string {
  const daemon = ping.headers.get("api-version");
  if (daemon === undefined) {
    if (ping.status === 200) return MAX_API_VERSION;
    throw new DbgError(
      `${where} does not answer like a Docker daemon: /_ping gave ${ping.status}`,
      {
        hint: "Check -H/--host, DOCKER_HOST and the current docker context",
      },
    );
  }
  if (!/^\d+\.\d+$/.test(daemon)) throw badResponse(`bad Api-Version: ${JSON.stringify(daemon)}`);
  if (compareVersions(daemon, MIN_API_VERSION) < 0) {
    throw new DbgError(
      `Docker at ${where} is too old: API ${daemon}, dbg needs ${MIN_API_VERSION} (Docker 19.03) or newer`,
      { hint: "Upgrade Docker to 19.03 or newer" },
    );
  }
  return compareVersions(daemon, MAX_API_VERSION) < 0 ? daemon : MAX_API_VERSION;
}

/** Compares "major.minor" API versions numerically. */
export function compareVersions(a: string, b: string): number {
  const [am, an] = a.split(".").map(Number);
  const [bm, bn] = b.split(".").map(Number);
  return am - bm || an - bn;
}

/** True for 2xx and for the statuses the caller chose to handle. */
export function isOk(status: number, okStatuses?: number[]): boolean {
  return (status >= 200 && status < 300) || (okStatuses?.includes(status) ?? false);
}

/** A whole body: undefined when empty, parsed when the content type is JSON, else text. */
export function decodeBody<T>(head: ResponseHead, bytes: Uint8Array): T | string | undefined {
  if (bytes.length === 0) return undefined;
  const text = new TextDecoder().decode(bytes);
  if (!/json/i.test(head.headers.get("content-type") ?? "")) return text;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw badResponse(`invalid JSON in a ${head.status} response`, err);
  }
}

/** The error for a non-2xx response: the `message` of a JSON body, or the plain text. */
export function apiError(head: ResponseHead, body: unknown): DockerApiError {
  let message = `HTTP ${head.status} ${head.statusText}`.trim();
  if (typeof body === "string" && body.trim()) message = body.trim();
  else if (
    body && typeof body === "object" && "message" in body && typeof body.message === "string"
  ) {
    message = body.message;
  }
  return new DockerApiError(head.status, message);
}

/** Where an attach stream's bytes come from: fills `buf`, or null at EOF. */
export type ReadInto = (buf: Uint8Array) => Promise<number | null>;

/** The most one read of an attach stream takes. */
const OUTPUT_READ_BYTES = 256 * 1024;

/**
 * A container's output, read from its attach connection straight into one buffer that is
 * reused: each chunk is a view of it, valid until the consumer reads the next chunk (the stream
 * pulls only then: no queue). Without a TTY, Docker multiplexes the stream: each frame is an
 * 8-byte header (byte 0 the stream id, bytes 1-3 zero, bytes 4-7 the big-endian payload length)
 * and the payload; frames may be split across reads, and one read may hold several. Payloads
 * go out as they arrive (a frame may become several chunks). Stream 3 is the daemon's error,
 * thrown. A stream that ends inside a frame is an error, which names `engine`.
 * See https://docs.docker.com/reference/api/engine/version/v1.47/#tag/Container/operation/ContainerAttach
 */
export function attachOutput(
  read: ReadInto,
  opts: { tty: boolean; engine?: EngineNames; onCancel?: () => void },
): ReadableStream<OutputChunk> {
  const buf = new Uint8Array(OUTPUT_READ_BYTES);
  const header = new Uint8Array(8);
  let have = 0; // header bytes gathered
  let stream = 1;
  let left = 0; // payload bytes still to come
  const error: Uint8Array[] = []; // stream 3's payload
  /**
   * Cuts the read's `n` bytes into chunks; whether any went out. Successive payloads of one
   * stream are moved together over the headers between them (within the buffer): one chunk,
   * so one write, for each run of a stream's frames in a read.
   */
  const frames = (n: number, ctl: ReadableStreamDefaultController<OutputChunk>) => {
    let i = 0;
    let out = false;
    let from = -1; // the chunk being gathered: buf[from, to) of stream `of`
    let to = 0;
    let of: 1 | 2 = 1;
    const flush = () => {
      if (from < 0) return;
      ctl.enqueue({ stream: of, data: buf.subarray(from, to) });
      from = -1;
      out = true;
    };
    while (i < n) {
      if (left === 0) {
        const k = Math.min(8 - have, n - i);
        header.set(buf.subarray(i, i + k), have);
        have += k;
        i += k;
        if (have < 8) break;
        if (header[0] > 3 || header[1] || header[2] || header[3]) {
          throw badResponse(
            `bad multiplexed frame header [${header.join(" ")}] (is the container a TTY?)`,
          );
        }
        stream = header[0];
        left = new DataView(header.buffer).getUint32(4);
        have = 0;
        continue;
      }
      const k = Math.min(left, n - i);
      left -= k;
      if (stream !== 3) {
        const s = stream === 2 ? 2 : 1;
        if (from >= 0 && s === of) buf.copyWithin(to, i, i + k);
        else {
          flush();
          from = to = i;
          of = s;
        }
        to += k;
        i += k;
        continue;
      }
      error.push(buf.slice(i, i + k));
      i += k;
      if (left > 0) continue;
      const what = new TextDecoder().decode(concatBytes(error)).trim();
      const service = capitalized(opts.engine?.service ?? "the Docker daemon");
      throw new DbgError(`${service} reported an error on the stream: ${what}`);
    }
    flush();
    return out;
  };
  return new ReadableStream<OutputChunk>({
    async pull(ctl) {
      for (;;) {
        const n = await read(buf);
        if (n === null) {
          if (have > 0 || left > 0) {
            const detail = "the attach stream ended in the middle of a frame";
            throw lostConnection(detail, undefined, opts.engine);
          }
          return ctl.close();
        }
        if (!opts.tty) {
          if (frames(n, ctl)) return;
        } else if (n > 0) return ctl.enqueue({ stream: 1, data: buf.subarray(0, n) });
      }
    },
    cancel: opts.onCancel,
  }, { highWaterMark: 0 });
}
