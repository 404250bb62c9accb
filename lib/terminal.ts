/**
 * Raw mode for the local terminal, in one place. Adapters never call `setRaw`.
 *
 * @module
 */

/** The part of `Deno.stdin` raw mode needs (a narrow type so tests can pass a fake). */
export type RawCapable = Pick<typeof Deno.stdin, "setRaw" | "isTerminal">;

/**
 * Run `fn` with `stdin` in raw mode when `enabled` and stdin is a terminal, and restore it when
 * `fn` settles. The restore function is also passed to `fn`, so output can end raw mode early
 * (for example before printing an error); calling it twice is safe.
 *
 * @example
 * ```ts
 * await withRawMode(Deno.stdin, true, async () => {
 *   // bytes typed now arrive one by one, Ctrl-C as 0x03
 * });
 * ```
 */
export async function withRawMode<T>(
  stdin: RawCapable,
  enabled: boolean,
  fn: (restore: () => void) => Promise<T>,
): Promise<T> {
  if (!enabled || !stdin.isTerminal()) return await fn(() => {});
  let raw = true;
  const restore = () => {
    if (!raw) return;
    raw = false;
    try {
      stdin.setRaw(false);
    } catch {
      // The terminal is gone (closed window): nothing to restore.
    }
  };
  stdin.setRaw(true, { cbreak: false });
  try {
    return await fn(restore);
  } finally {
    restore();
  }
}
