/**
 * Terminal size forwarding: one first resize right after start, with a few retries (the sidecar
 * may not have its TTY yet; docker/cli `tty.go` does the same), then one per SIGWINCH. It runs
 * beside the stream pumps, never before them, so a fast command's output is not held up.
 *
 * @module
 */

/** Where the size comes from (`Deno.consoleSize` in production). */
export type SizeSource = () => { rows: number; columns: number } | undefined;

/** The local console size, or undefined when there is no terminal. */
export function consoleSize(): { rows: number; columns: number } | undefined {
  try {
    return Deno.consoleSize();
  } catch {
    return undefined;
  }
}

/**
 * Forward the terminal size to `resize` now (in the background, retrying) and on every
 * SIGWINCH. Returns a function that stops both.
 *
 * @example
 * ```ts
 * const stop = followResize((h, w) => sidecar.resize(h, w));
 * // … session …
 * stop();
 * ```
 */
export function followResize(
  resize: (rows: number, cols: number) => Promise<void>,
  size: SizeSource = consoleSize,
): () => void {
  let stopped = false;
  const apply = async () => {
    const s = size();
    if (s && s.rows > 0 && s.columns > 0) await resize(s.rows, s.columns);
  };
  (async () => {
    for (let attempt = 0; attempt < 10 && !stopped; attempt++) {
      try {
        return await apply();
      } catch {
        await new Promise((r) => setTimeout(r, 10 * (attempt + 1)));
      }
    }
  })();
  const onWinch = () => {
    apply().catch(() => {});
  };
  Deno.addSignalListener("SIGWINCH", onWinch);
  return () => {
    stopped = true;
    Deno.removeSignalListener("SIGWINCH", onWinch);
  };
}
