/**
 * The engines that speak Docker's Engine API: Docker itself, and Podman through its
 * Docker-compatible service. One adapter serves both (runtimes/docker.ts); what differs is where
 * the socket is and the words of the hints, which this file holds.
 *
 * @module
 */

import { type DockerEndpoint, parseDockerHost, resolveEndpoint } from "./endpoint.ts";

/** Where an engine's endpoint came from, for --debug. */
export interface ResolvedEndpoint {
  endpoint: DockerEndpoint;
  source: string;
}

/** What dbg reads of the environment to find an endpoint. */
export interface EndpointEnv {
  host?: string;
  env: (k: string) => string | undefined;
  home?: string;
  /** The user's uid (Podman: root's socket or the user's own). */
  uid?: number | null;
}

/** One engine that speaks the Engine API. */
export interface Engine {
  /** The runtime word: `dbg docker`, `dbg podman`. */
  name: "docker" | "podman";
  /** Its command-line client, which hints quote (`podman ps`). */
  cli: string;
  /** The service in messages: "the Docker daemon". */
  service: string;
  /** How to start the service. */
  start: string;
  /** Where the service listens, in the engine's own order. */
  resolve(o: EndpointEnv): Promise<ResolvedEndpoint>;
  /**
   * Whether AutoRemove removes a sidecar once it ends. Podman's keeps one that had an exec (the
   * lifeline), so dbg removes it itself (a dbg killed by SIGKILL leaves it, ended, for gc).
   */
  autoRemoves: boolean;
}

export const DOCKER: Engine = {
  name: "docker",
  cli: "docker",
  service: "the Docker daemon",
  start:
    "Start Docker (e.g. sudo systemctl start docker), or point dbg at the daemon with -H/--host or DOCKER_HOST",
  resolve: resolveEndpoint,
  autoRemoves: true,
};

/** Root's Podman socket (`podman system service`, or systemd's podman.socket). */
export const PODMAN_ROOT_SOCKET = "/run/podman/podman.sock";

export const PODMAN: Engine = {
  name: "podman",
  cli: "podman",
  service: "the Podman service",
  start:
    "Start Podman's API socket: systemctl --user start podman.socket (rootless), or sudo systemctl start podman.socket; or pass -H/--host",
  resolve: resolvePodman,
  autoRemoves: false,
};

/**
 * Podman's socket: `-H/--host`, else `CONTAINER_HOST`, else the user's rootless socket
 * (`$XDG_RUNTIME_DIR/podman/podman.sock`) when it exists, else root's.
 */
export async function resolvePodman(o: EndpointEnv): Promise<ResolvedEndpoint> {
  if (o.host !== undefined) {
    return { endpoint: parseDockerHost(o.host, { from: "-H/--host" }), source: "-H/--host" };
  }
  const env = o.env("CONTAINER_HOST");
  if (env) {
    return { endpoint: parseDockerHost(env, { from: "CONTAINER_HOST" }), source: "CONTAINER_HOST" };
  }
  const rootless = podmanUserSocket(o);
  if (rootless && await isSocket(rootless)) {
    return { endpoint: { kind: "unix", path: rootless }, source: "the rootless socket" };
  }
  return { endpoint: { kind: "unix", path: PODMAN_ROOT_SOCKET }, source: "root's socket" };
}

/** The rootless socket of the user dbg runs as (none for root, whose socket is root's). */
export function podmanUserSocket(o: EndpointEnv): string | undefined {
  if (o.uid === 0) return undefined;
  const dir = o.env("XDG_RUNTIME_DIR") || (o.uid != null ? `/run/user/${o.uid}` : undefined);
  return dir && `${dir}/podman/podman.sock`;
}

export async function isSocket(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isSocket === true;
  } catch {
    return false;
  }
}
