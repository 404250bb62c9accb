/**
 * Reading a task's output FIFOs. Deno reads a file, and a FIFO is one to it, on a thread of its
 * blocking pool: a hand-off between threads for each read, which made most of what dbg's CPU
 * for a big stream cost beyond ctr's. So where glibc's libc loads through FFI, the FIFOs are
 * opened a second time, non-blocking, and read on the main thread until they are empty. Then
 * it waits for more with poll(2): briefly on the main thread (a stream's next write is rarely
 * further away), then on another thread, so that a session that prints nothing holds up
 * nothing. By hand, 256 MiB through `dbg containerd -- head -c` into /dev/shm, 8 runs each
 * alternated: medians of 0.45 s of CPU and 1.0 s of wall time through Deno's reads, 0.38 s and
 * 0.83 s here.
 *
 * @module
 */

import type { OutputChunk } from "../../lib/adapter.ts";
import { glibc } from "../_libc.ts";

/** An output FIFO: as Deno opened it (once its writer had), where it is, and its stream. */
export interface OutputFifo {
  file: Deno.FsFile;
  path: string;
  stream: 1 | 2;
}

/** How much one chunk holds at most: a pipe holds 64 KiB. */
const READ_BYTES = 64 * 1024;
// (Linux's values, the same on x86_64 and arm64.)
const O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;
const POLLIN = 0x1, POLLERR = 0x8, POLLNVAL = 0x20;
/** How long the main thread waits for more before another thread takes over (ms). */
const BRIEF_MS = 2;
/** How long one wait on the other thread lasts before it is asked again (ms). */
const LONG_MS = 1000;

const poll = { parameters: ["buffer", "u64", "i32"], result: "i32" } as const;
const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  poll,
  pollElsewhere: { ...poll, name: "poll", nonblocking: true },
} as const;
type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let libc: Libc | null | undefined;

/**
 * The FIFOs' bytes as chunks of their streams, from sources to interleave: one source for all
 * of them where libc loads, else one per FIFO read through Deno (musl, macOS). Each source
 * reads into one buffer: a chunk is valid until the next is asked for (lib/adapter.ts
 * OutputChunk).
 */
export function fifoSources(fifos: OutputFifo[]): AsyncIterable<OutputChunk>[] {
  if (libc === undefined) libc = glibc(SYMBOLS);
  const c = libc;
  const fds = c
    ? fifos.map((f) => c.open(new TextEncoder().encode(`${f.path}\0`), O_NONBLOCK | O_CLOEXEC))
    : [];
  if (!c || fds.some((fd) => fd < 0)) {
    for (const fd of fds) if (fd >= 0) c!.close(fd);
    return fifos.map((f) => denoReads(f.file, f.stream));
  }
  return [nonBlockingReads(c, fifos.map((f, i) => ({ ...f, fd: fds[i] })))];
}

async function* denoReads(file: Deno.FsFile, stream: 1 | 2): AsyncGenerator<OutputChunk> {
  const buf = new Uint8Array(READ_BYTES);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) return;
    yield { stream, data: buf.subarray(0, n) };
  }
}

async function* nonBlockingReads(
  c: Libc,
  fifos: (OutputFifo & { fd: number })[],
): AsyncGenerator<OutputChunk> {
  const buf = new Uint8Array(READ_BYTES);
  const live = [...fifos];
  let polled = pollSet(live);
  try {
    while (live.length) {
      let got = false;
      for (const f of [...live]) {
        const { len, last } = drain(c, f.fd, buf);
        if (len > 0) {
          got = true;
          yield { stream: f.stream, data: buf.subarray(0, len) };
        }
        if (last === 0) {
          live.splice(live.indexOf(f), 1);
          c.close(f.fd);
          polled = pollSet(live);
        }
      }
      // All empty for now (a read of -1: EAGAIN, or EINTR; anything worse, poll says).
      if (!got && live.length) await waitForData(c, live, polled);
    }
  } finally {
    for (const f of live) c.close(f.fd);
  }
}

/**
 * Reads what `fd` has into `buf`, up to its size (the shim writes a few KiB at a time, so one
 * chunk holds several writes): how much, and the last read's result (0: the end, -1: empty).
 */
function drain(c: Libc, fd: number, buf: Uint8Array): { len: number; last: number } {
  for (let len = 0;;) {
    const n = Number(c.read(fd, buf.subarray(len), BigInt(buf.length - len)));
    if (n <= 0 || (len += n) === buf.length) return { len, last: n };
  }
}

/** poll(2)'s array for the FIFOs (struct pollfd: int fd, short events, short revents). */
function pollSet(live: { fd: number }[]): { pollfds: Uint8Array; view: DataView } {
  const pollfds = new Uint8Array(8 * live.length);
  const view = new DataView(pollfds.buffer);
  live.forEach((f, i) => {
    view.setInt32(8 * i, f.fd, true);
    view.setInt16(8 * i + 4, POLLIN, true);
  });
  return { pollfds, view };
}

/** Waits until a FIFO has data or has ended (or a while has passed). */
async function waitForData(
  c: Libc,
  live: (OutputFifo & { fd: number })[],
  { pollfds, view }: ReturnType<typeof pollSet>,
): Promise<void> {
  const n = BigInt(live.length);
  if (c.poll(pollfds, n, BRIEF_MS) === 0 && await c.pollElsewhere(pollfds, n, LONG_MS) <= 0) {
    return;
  }
  live.forEach((f, i) => {
    if (view.getInt16(8 * i + 6, true) & (POLLERR | POLLNVAL)) {
      throw new Error(`Cannot read ${f.path}`);
    }
  });
}
