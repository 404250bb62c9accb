/**
 * Byte pumps between the local stdio and an attached sidecar.
 *
 * @module
 */

import type { Attachment, OutputChunk } from "./adapter.ts";

/** A writer with Deno's `write` shape (Deno.stdout, Deno.stderr, or a test buffer). */
export interface ByteWriter {
  write(p: Uint8Array): Promise<number>;
}

/** Write all of `data`, looping on short writes. */
export async function writeAll(w: ByteWriter, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await w.write(data.subarray(off));
}

/**
 * Copy the sidecar's output to stdout and stderr, keeping them apart. Resolves when the output
 * ends.
 */
export async function pumpOutput(
  output: ReadableStream<OutputChunk>,
  out: { stdout: ByteWriter; stderr: ByteWriter },
): Promise<void> {
  for await (const chunk of output) {
    await writeAll(chunk.stream === 2 ? out.stderr : out.stdout, chunk.data);
  }
}

/**
 * Copy local stdin to the sidecar. On EOF, half-close when `closeOnEof` (non-TTY: the command
 * sees EOF). With a TTY the sidecar's stdin stays open: closing it would hang up the shell.
 * Resolves when stdin ends or `signal` aborts; write errors after the sidecar is gone are ignored.
 */
export async function pumpInput(
  input: ReadableStream<Uint8Array>,
  att: Pick<Attachment, "write" | "closeWrite">,
  opts: { closeOnEof: boolean; signal: AbortSignal },
): Promise<void> {
  const reader = input.getReader();
  const aborted = new Promise<void>((resolve) => {
    if (opts.signal.aborted) resolve();
    opts.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  try {
    while (!opts.signal.aborted) {
      const r = await Promise.race([reader.read(), aborted.then(() => undefined)]);
      if (!r) return;
      if (r.done) {
        if (opts.closeOnEof) await att.closeWrite();
        return;
      }
      await att.write(r.value);
    }
  } catch {
    // The sidecar went away while we were writing: its exit status tells the story.
  } finally {
    reader.releaseLock();
  }
}
