/**
 * The entry script's exit-code trailer on Kubernetes (lib/entry.sh): the kubelet reports an exit
 * code a second or more after the fact, so the entry script sends it as the last bytes of the
 * stream, in an OSC sequence that dbg strips here (and terminals ignore).
 *
 * @module
 */

import type { OutputChunk } from "../../lib/adapter.ts";

// deno-lint-ignore no-control-regex
const EXIT_TRAILER = /\x1b\]5379;dbg-exit=(\d+)\x07/;
const TRAILER_HEAD = "\x1b]5379;dbg-exit=";

/** How many bytes at the end of `text` could be the start of a trailer cut off by a chunk end. */
function trailerStart(text: string): number {
  const at = text.lastIndexOf("\x1b");
  if (at < 0 || text.length - at > TRAILER_HEAD.length + 3) return 0;
  const tail = text.slice(at);
  const head = tail.slice(0, TRAILER_HEAD.length);
  return TRAILER_HEAD.startsWith(head) && /^\d*$/.test(tail.slice(head.length)) ? tail.length : 0;
}

/**
 * Strips the entry script's exit-code trailer from the output and reports the code. The trailer
 * is one short write, the session's last, but the pipes between the container and dbg may cut
 * it between two chunks: a chunk that ends like the start of one is held back until the next
 * chunk of its stream, or for `holdMs` at most, so that other escape sequences are not delayed.
 */
export function exitTrailer(
  onCode: (code: number) => void,
  holdMs = 100,
): TransformStream<OutputChunk> {
  const dec = new TextDecoder("latin1");
  const held = new Map<
    OutputChunk["stream"],
    { data: Uint8Array; timer: ReturnType<typeof setTimeout> }
  >();
  const release = (ctl: TransformStreamDefaultController<OutputChunk>, stream: 1 | 2) => {
    const h = held.get(stream);
    if (!h) return;
    clearTimeout(h.timer);
    held.delete(stream);
    try {
      ctl.enqueue({ stream, data: h.data });
    } catch {
      // the reader has gone
    }
  };
  return new TransformStream<OutputChunk>({
    transform(chunk, ctl) {
      const before = held.get(chunk.stream);
      let data = chunk.data;
      if (before) {
        clearTimeout(before.timer);
        held.delete(chunk.stream);
        data = new Uint8Array([...before.data, ...data]);
      }
      const text = dec.decode(data);
      const m = EXIT_TRAILER.exec(text);
      if (m) {
        onCode(Number(m[1]));
        data = new Uint8Array([
          ...data.subarray(0, m.index),
          ...data.subarray(m.index + m[0].length),
        ]);
      }
      const keep = m ? 0 : trailerStart(text);
      const pass = data.subarray(0, data.length - keep);
      if (pass.length > 0) ctl.enqueue({ stream: chunk.stream, data: pass });
      if (keep > 0) {
        const timer = setTimeout(() => release(ctl, chunk.stream), holdMs);
        held.set(chunk.stream, { data: data.slice(data.length - keep), timer });
      }
    },
    flush(ctl) {
      for (const stream of [...held.keys()]) release(ctl, stream);
    },
  });
}
