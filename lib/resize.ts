/**
 * Terminal size forwarding: one first resize right after start, with a few retries (the sidecar
 * may not have its TTY yet; docker/cli `tty.go` does the same), then one per SIGWINCH.
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
 * Forward the terminal size to `resize` now and on every SIGWINCH. Returns a function that stops
 * listening.
 *
 * @example
 * ```ts
 * const stop = await followResize((h, w) => sidecar.resize(h, w));
 * // … session …
 * stop();
 * ```
 */
export async function followResize(
  resize: (rows: number, cols: number) => Promise<void>,
  size: SizeSource = consoleSize,
): Promise<() => void> {
  const apply = async () => {
    const s = size();
    if (s && s.rows > 0 && s.columns > 0) await resize(s.rows, s.columns);
  };
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await apply();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 10 * (attempt + 1)));
    }
  }
  const onWinch = () => {
    apply().catch(() => {});
  };
  Deno.addSignalListener("SIGWINCH", onWinch);
  return () => Deno.removeSignalListener("SIGWINCH", onWinch);
}
