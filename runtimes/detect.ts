/**
 * `dbg TARGET`: the target is looked up on every engine the user's settings reach, all at once
 * and each within a short timeout: the Docker endpoint (as `dbg docker` finds it), Podman's
 * sockets (`CONTAINER_HOST`, else the user's rootless one and root's), and containerd's
 * (`CONTAINERD_ADDRESS`, else the usual places) in every namespace. Kubernetes is never asked:
 * `dbg k8s` says which cluster. lib/detect.ts decides from the answers.
 *
 * A probe is the adapter's own connect and inspect, so the winner's answer is the session's and
 * nothing is asked twice. containerd's client is loaded only where a socket is there.
 *
 * @module
 */

import type { ConnectOptions, RuntimeAdapter, TargetFacts } from "../lib/adapter.ts";
import { type Answer, decide, type Place } from "../lib/detect.ts";
import { EngineUnreachable } from "../lib/errors.ts";
import { DEFAULT_ADDRESSES, presentAddresses } from "./containerd/address.ts";
import {
  DOCKER,
  type EndpointEnv,
  type Engine,
  isSocket,
  PODMAN,
  PODMAN_ROOT_SOCKET,
  podmanUserSocket,
} from "./docker/engine.ts";
import { describe } from "./docker/endpoint.ts";

/** How long one engine may take to answer. */
export const PROBE_TIMEOUT_MS = 3000;

/** A place and how to ask it. */
interface Probe extends Place {
  /** The adapter, connected and ready to inspect; it throws where the engine cannot be used. */
  open(): Promise<RuntimeAdapter>;
}

/**
 * Find `target` on every engine. Returns the connected adapter that has it and its facts;
 * throws what lib/detect.ts decides otherwise. `argv` is dbg's, for the commands it suggests.
 */
export async function detectTarget(
  target: string,
  argv: string[],
  connect: ConnectOptions,
): Promise<{ adapter: RuntimeAdapter; facts: TargetFacts }> {
  const env: EndpointEnv = {
    env: (k) => Deno.env.get(k),
    home: Deno.env.get("HOME"),
    uid: Deno.uid(),
  };
  // The losers' notices would only confuse: the winner's are the session's.
  const quiet = { ...connect, notice: undefined };
  const probes = [...await engineProbes(env, quiet), ...await containerdProbes(quiet)];
  const answers = await Promise.all(probes.map((p) => ask(p, target, connect)));
  const { place, found } = decide(target, answers, argv);
  connect.notice?.(`dbg: ${target} is on ${place.runtime} (${place.where})`);
  return found;
}

async function ask(
  probe: Probe,
  target: string,
  connect: ConnectOptions,
): Promise<Answer<{ adapter: RuntimeAdapter; facts: TargetFacts }>> {
  const { runtime, where, flags } = probe;
  const place = { runtime, where, flags };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new EngineUnreachable(
          `${runtime} at ${where}`,
          `no answer within ${PROBE_TIMEOUT_MS / 1000}s`,
          {
            hint: `Name the runtime to wait for it: dbg ${runtime} …`,
          },
        ),
      );
    }, PROBE_TIMEOUT_MS);
  });
  try {
    const adapter = await Promise.race([probe.open(), late]);
    const facts = await Promise.race([adapter.inspectTarget(target), late]);
    connect.debug(`${runtime} at ${where}: ${facts.name} (${facts.state})`);
    return { place, found: { adapter, facts }, id: facts.id };
  } catch (error) {
    connect.debug(`${runtime} at ${where}: ${error instanceof Error ? error.message : error}`);
    return { place, error };
  } finally {
    clearTimeout(timer);
  }
}

/** Docker's endpoint, and Podman's sockets unless Docker's is one of them. */
async function engineProbes(env: EndpointEnv, connect: ConnectOptions): Promise<Probe[]> {
  const { DockerAdapter } = await import("./docker.ts");
  const probe = (engine: Engine, where: string, host?: string, flags: string[] = []): Probe => ({
    runtime: engine.name,
    where,
    flags,
    open: async () => {
      const adapter = new DockerAdapter(engine);
      await adapter.connect({ ...connect, host });
      return adapter;
    },
  });
  const docker = await DOCKER.resolve(env).then((r) => describe(r.endpoint), () => undefined);
  const probes = [probe(DOCKER, docker ?? "its endpoint")];
  const podman: Probe[] = [];
  if (env.env("CONTAINER_HOST")) {
    const r = await PODMAN.resolve(env);
    podman.push(probe(PODMAN, describe(r.endpoint)));
  } else {
    const rootless = podmanUserSocket(env);
    const own = rootless !== undefined && await isSocket(rootless);
    if (own) podman.push(probe(PODMAN, `unix://${rootless}`));
    const root = `unix://${PODMAN_ROOT_SOCKET}`;
    podman.push(probe(PODMAN, root, root, own ? ["-H", root] : []));
  }
  return [...probes, ...podman.filter((p) => p.where !== docker)];
}

/** containerd at `CONTAINERD_ADDRESS`, else at each usual place that is there. */
async function containerdProbes(connect: ConnectOptions): Promise<Probe[]> {
  const fromEnv = Deno.env.get("CONTAINERD_ADDRESS");
  const addresses = fromEnv ? [fromEnv.replace(/^unix:\/\//, "")] : await presentAddresses();
  if (!addresses.length) {
    const where = `no socket at ${DEFAULT_ADDRESSES.join(", ")}`;
    const none = new EngineUnreachable(`containerd: ${where}`, "", { hint: "" });
    return [{ runtime: "containerd", where, flags: [], open: () => Promise.reject(none) }];
  }
  const { ContainerdAdapter } = await import("./containerd.ts");
  return addresses.map((address, i) => ({
    runtime: "containerd",
    where: address,
    flags: i === 0 ? [] : ["--address", address],
    open: async () => {
      const adapter = new ContainerdAdapter();
      await adapter.connect({ ...connect, host: address });
      return adapter;
    },
  }));
}
