/**
 * The runtime loader: maps a runtime name to its adapter module, loaded with a dynamic
 * `import()` so that `dbg docker` never loads another runtime's client.
 *
 * The specifiers are string literals on purpose: `deno compile` includes them (with
 * `--include`), so the dynamic imports resolve inside the binary.
 *
 * @module
 */

import type { AdapterSupports, RuntimeAdapter } from "../lib/adapter.ts";
import { usageError } from "../lib/errors.ts";

const LOADERS: Record<string, () => Promise<{ adapter: RuntimeAdapter }>> = {
  docker: () => import("./docker.ts"),
  podman: () => import("./podman.ts"),
  containerd: () => import("./containerd.ts"),
  k8s: () => import("./k8s.ts"),
};

/** What every runtime that `dbg TARGET` finds supports (runtimes/local.ts): no images. */
export const DETECTED_SUPPORTS: AdapterSupports = {
  keep: true,
  privileged: true,
  name: true,
  images: false,
  copy: false,
  attach: false,
};

/** Load the adapter for `name`. */
export async function loadAdapter(name: string): Promise<RuntimeAdapter> {
  const load = LOADERS[name];
  if (!load) {
    throw usageError(`Unknown runtime "${name}"`, `Runtimes: ${Object.keys(LOADERS).join(", ")}`);
  }
  return (await load()).adapter;
}
