/**
 * The runtime loader: maps a runtime name to its adapter module, loaded with a dynamic
 * `import()` so that `dbg docker` never loads another runtime's client.
 *
 * The specifiers are computed on purpose: `deno run` builds the module graph of every literal
 * `import()` before dbg starts, so each run would read every runtime's modules and resolve their
 * npm packages (~2 ms and 2 MiB for `dbg docker`). `deno bundle` and `deno compile` take them as
 * entries (scripts/compile.ts, whose check proves that every one is there). In the bundle, this
 * code sits in JS at its top, and each runtime's module in its runtimes/.
 *
 * @module
 */

import type { AdapterSupports, RuntimeAdapter } from "../lib/adapter.ts";
import { usageError } from "../lib/errors.ts";
import { warmTls } from "./k8s/warm.ts";

/**
 * The runtimes' modules, and runtimes/local.ts, which looks a target up on each engine (also
 * what scripts/compile.ts includes in the binary).
 */
export const MODULES = ["docker", "podman", "containerd", "k8s", "local"] as const;
const RUNTIMES = ["docker", "podman", "containerd", "k8s"] as const;
/** What a runtime begins before its modules load, beside that load. */
const EARLY: Partial<Record<typeof RUNTIMES[number], () => void>> = { k8s: warmTls };

const BUNDLED = import.meta.url.endsWith(".js");

/** One of {@link MODULES} (T: its type, as `typeof import("./docker.ts")`). */
export function runtimeModule<T>(name: typeof MODULES[number]): Promise<T> {
  // (In a variable: the bundler reads a template in `import()` as a glob of files to bundle.)
  const specifier = BUNDLED ? `./runtimes/${name}.js` : `./${name}.ts`;
  return import(specifier);
}

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
  const known = RUNTIMES.find((r) => r === name);
  if (!known) throw usageError(`Unknown runtime "${name}"`, `Runtimes: ${RUNTIMES.join(", ")}`);
  EARLY[known]?.();
  return (await runtimeModule<{ adapter: RuntimeAdapter }>(known)).adapter;
}
