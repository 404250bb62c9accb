/**
 * Where containerd listens: `--address`, `CONTAINERD_ADDRESS`, or the usual places. Apart from
 * the client, so that auto-detection (runtimes/local.ts) loads no gRPC code on a machine
 * without containerd.
 *
 * @module
 */

import { DbgError } from "../../lib/errors.ts";

/** Where a containerd socket usually is, in probe order (after --address and the env). */
export const DEFAULT_ADDRESSES = [
  "/run/containerd/containerd.sock",
  "/run/k3s/containerd/containerd.sock",
  "/var/run/docker/containerd/containerd.sock",
];

/** Pick the socket: --address, CONTAINERD_ADDRESS, then the usual places that exist. */
export async function resolveAddress(
  flag: string | undefined,
  env: (k: string) => string | undefined,
): Promise<{ address: string; source: string }> {
  if (flag) return { address: flag.replace(/^unix:\/\//, ""), source: "--address" };
  const fromEnv = env("CONTAINERD_ADDRESS");
  if (fromEnv) return { address: fromEnv.replace(/^unix:\/\//, ""), source: "CONTAINERD_ADDRESS" };
  const [first] = await presentAddresses();
  if (first) return { address: first, source: "probe" };
  throw new DbgError(`No containerd socket found (tried ${DEFAULT_ADDRESSES.join(", ")})`, {
    hint: "Pass it with --address /path/to/containerd.sock, or set CONTAINERD_ADDRESS",
  });
}

/** The usual places that hold something (a socket dbg may not be allowed to open counts). */
export async function presentAddresses(): Promise<string[]> {
  const present = await Promise.all(DEFAULT_ADDRESSES.map(async (path) => {
    try {
      await Deno.lstat(path);
      return path;
    } catch (e) {
      return e instanceof Deno.errors.PermissionDenied ? path : undefined;
    }
  }));
  return present.filter((p) => p !== undefined);
}
