/**
 * The entry script's marks on Kubernetes (lib/entry.sh), OSC sequences that dbg strips here (and
 * terminals ignore): the exit code, sent as the last bytes of the stream, as the kubelet reports
 * one a second or more after the fact; and "ready", sent on stderr after the go line until dbg
 * answers, as the kubelet joins the attach's stderr only after its stdin.
 *
 * @module
 */

import type { OutputChunk } from "../../lib/adapter.ts";
import { concatBytes } from "../../lib/http1.ts";

/** Where a filter's output goes (a stream's controller). */
export interface ChunkSink {
  enqueue(chunk: OutputChunk): void;
}

/**
 * A filter of output chunks, in the shape of a TransformStream's transformer, so that a
 * ChannelSocket can apply it as it reads (channel.ts) and a test through a TransformStream.
 */
export interface OutputFilter {
  transform(chunk: OutputChunk, out: ChunkSink): void;
  flush(out: ChunkSink): void;
}

// deno-lint-ignore no-control-regex
const MARK = /\x1b\]5379;dbg-(?:exit=(\d+)|ready)\x07/g;
const EXIT_HEAD = "\x1b]5379;dbg-exit=";
const READY = "\x1b]5379;dbg-ready\x07";
/**
 * Where marks are looked for in a big chunk: its first and last bytes. Ready marks come before
 * the command's output (at most at a chunk's start), and the exit code is the last write; a
 * search through every byte of a stream cost more than all the rest of its handling.
 */
const EDGE = 64;

/** How many bytes at the end of `text` could be the start of a mark cut off by a chunk end. */
function markStart(text: string): number {
  const at = text.lastIndexOf("\x1b");
  if (at < 0 || text.length - at > EXIT_HEAD.length + 3) return 0;
  const tail = text.slice(at);
  const head = tail.slice(0, EXIT_HEAD.length);
  const exit = EXIT_HEAD.startsWith(head) && /^\d*$/.test(tail.slice(head.length));
  return exit || READY.startsWith(tail) ? tail.length : 0;
}

/**
 * Strips the entry script's marks from the output and reports them. A mark is one short write,
 * but the pipes between the container and dbg may cut it between two chunks: a chunk that ends
 * like the start of one is held back until the next chunk of its stream, or for `holdMs` at
 * most, so that other escape sequences are not delayed. (Held bytes are a copy: a chunk is valid
 * only until the next read.)
 */
export function entryMarks(
  on: { exit: (code: number) => void; ready: () => void },
  holdMs = 100,
): OutputFilter {
  const dec = new TextDecoder("latin1");
  const held = new Map<
    OutputChunk["stream"],
    { data: Uint8Array; timer: ReturnType<typeof setTimeout> }
  >();
  const release = (ctl: ChunkSink, stream: 1 | 2) => {
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
  return {
    transform(chunk, ctl) {
      const before = held.get(chunk.stream);
      let data = chunk.data;
      if (before) {
        clearTimeout(before.timer);
        held.delete(chunk.stream);
        data = concatBytes([before.data, data]);
      }
      // Most chunks have no escape where a mark can be: they pass as they are, without a copy.
      const edges = data.length > 2 * EDGE
        ? [data.subarray(0, EDGE), data.subarray(-EDGE)]
        : [data];
      if (edges.every((e) => e.indexOf(0x1b) < 0)) {
        return ctl.enqueue({ stream: chunk.stream, data });
      }
      // (Latin-1 decoding maps each byte to one character, so indices carry over.)
      const text = dec.decode(data);
      const parts: Uint8Array[] = [];
      let from = 0;
      for (const m of text.matchAll(MARK)) {
        if (m[1] === undefined) on.ready();
        else on.exit(Number(m[1]));
        parts.push(data.subarray(from, m.index));
        from = m.index + m[0].length;
      }
      if (from > 0) data = concatBytes([...parts, data.subarray(from)]);
      const keep = markStart(dec.decode(data.subarray(-32)));
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
  };
}
