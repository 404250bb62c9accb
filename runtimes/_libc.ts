/**
 * glibc's libc through FFI, for what Deno does not offer: see runtimes/containerd/fifo.ts and
 * runtimes/k8s/nodelay.ts. It does not load under musl or on macOS, where those callers do
 * without it.
 *
 * @module
 */

/** libc.so.6 with these symbols, or null where it does not load. */
export function glibc<S extends Deno.ForeignLibraryInterface>(
  symbols: S,
): Deno.DynamicLibrary<S>["symbols"] | null {
  try {
    return Deno.dlopen("libc.so.6", symbols).symbols;
  } catch {
    return null;
  }
}
