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

/**
 * Local stdout or stderr (`fd` 1 or 2) as a writer. Where a write cannot wait for a reader (a
 * regular file, or a device that is no terminal, such as /dev/null) it writes synchronously,
 * which spares each write a hand-off to another thread (a third of a stream's CPU). A pipe or
 * a terminal may block for as long as its reader likes, so its writes stay asynchronous: dbg
 * keeps its lifeline beating and handles signals meanwhile.
 */
export function localWriter(file: typeof Deno.stdout | typeof Deno.stderr, fd: 1 | 2): ByteWriter {
  let info;
  try {
    info = Deno.statSync(`/dev/fd/${fd}`);
  } catch {
    return file;
  }
  if (!info.isFile && !(info.isCharDevice && !file.isTerminal())) return file;
  return { write: (p) => Promise.resolve(file.writeSync(p)) };
}

/** Write all of `data`, looping on short writes. */
export async function writeAll(w: ByteWriter, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await w.write(data.subarray(off));
}

/**
 * Copy the sidecar's output to stdout and stderr, keeping them apart. Resolves when the output
 * ends (`done`), or with `local-closed` when a local write fails (a closed pipe such as
 * `| head -1`, or a terminal that is gone): the session then ends like on SIGPIPE. Errors of
 * the sidecar's stream reject.
 */
export async function pumpOutput(
  output: ReadableStream<OutputChunk>,
  out: { stdout: ByteWriter; stderr: ByteWriter },
): Promise<"done" | "local-closed"> {
  for await (const chunk of output) {
    try {
      await writeAll(chunk.stream === 2 ? out.stderr : out.stdout, chunk.data);
    } catch {
      return "local-closed";
    }
  }
  return "done";
}

/**
 * Copy local stdin to the sidecar. On EOF, half-close when `closeOnEof` (non-TTY: the command
 * sees EOF). With a TTY the sidecar's stdin stays open: closing it would hang up the shell.
 * Resolves with why it ended: `eof` (stdin ended, or failed as a closed terminal does),
 * `aborted`, or `sidecar` (writing failed: the sidecar went away, its exit status tells why).
 */
export async function pumpInput(
  input: ReadableStream<Uint8Array>,
  att: Pick<Attachment, "write" | "closeWrite">,
  opts: { closeOnEof: boolean; signal: AbortSignal },
): Promise<"eof" | "aborted" | "sidecar"> {
  const reader = input.getReader();
  // One read, or undefined on abort. (Not a race against one long-lived abort promise: each
  // race would leave a reaction on it that holds its chunk, so all input would stay in memory.)
  const next = () =>
    new Promise<ReadableStreamReadResult<Uint8Array> | undefined>((resolve, reject) => {
      if (opts.signal.aborted) return resolve(undefined);
      const onAbort = () => resolve(undefined);
      opts.signal.addEventListener("abort", onAbort, { once: true });
      reader.read().then(resolve, reject).finally(() =>
        opts.signal.removeEventListener("abort", onAbort)
      );
    });
  try {
    while (true) {
      let r;
      try {
        r = await next();
      } catch {
        return "eof";
      }
      if (!r) return "aborted";
      if (r.done) {
        if (opts.closeOnEof) await att.closeWrite();
        return "eof";
      }
      await att.write(r.value);
    }
  } catch {
    return "sidecar";
  } finally {
    reader.releaseLock();
  }
}
