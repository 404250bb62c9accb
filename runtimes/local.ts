/**
 * The engines on this machine that dbg reaches without a runtime word: the Docker endpoint (as
 * `dbg docker` finds it), Podman's sockets (`CONTAINER_HOST`, else the user's rootless one and
 * root's), and containerd's (`CONTAINERD_ADDRESS`, else the usual places), each asked at once
 * and within a short timeout. Kubernetes is never asked: `dbg k8s` says which cluster.
 *
 * `dbg TARGET` asks each for the target (lib/detect.ts decides), with the adapter's own connect
 * and inspect, so the winner's answer is the session's and nothing is asked twice. `dbg
 * sessions` and `dbg gc` ask each for what dbg made (lib/gc.ts decides). containerd's client is
 * loaded only where a socket is there.
 *
 * @module
 */

import type { ConnectOptions, RuntimeAdapter, SessionPart, TargetFacts } from "../lib/adapter.ts";
import { type Answer, decide, type Place } from "../lib/detect.ts";
import { DbgError, EngineUnreachable } from "../lib/errors.ts";
import { runtimeModule } from "./mod.ts";
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
  const answers = await askAll(connect, async (adapter, place) => {
    const facts = await adapter.inspectTarget(target);
    connect.debug(`${place.runtime} at ${place.where}: ${facts.name} (${facts.state})`);
    return { found: { adapter, facts }, id: facts.id };
  });
  const { place, found } = decide(target, answers, argv);
  connect.notice?.(`dbg: ${target} is on ${place.runtime} (${place.where})`);
  return found;
}

/** An engine that answered `dbg sessions` or `dbg gc`: its adapter and dbg's parts there. */
export interface Holding {
  place: Place;
  adapter: RuntimeAdapter;
  parts: SessionPart[];
}

/** What dbg made on every engine; and the engines that could not be asked, with why. */
export async function listParts(
  connect: ConnectOptions,
): Promise<{ held: Holding[]; failed: Array<{ place: Place; error: unknown }> }> {
  const answers = await askAll(connect, async (adapter, place) => {
    const parts = await adapter.sessionParts!();
    return { found: { place, adapter, parts }, id: place.where };
  });
  return {
    held: answers.flatMap((a) => "found" in a ? [a.found] : []),
    failed: answers.flatMap((a) => "error" in a ? [a] : []),
  };
}

/**
 * The running dbg sidecar named `name` (`dbg attach`), on every engine or on `runtime`'s, with
 * its connected adapter.
 */
export async function findSession(
  name: string,
  connect: ConnectOptions,
  runtime?: string,
): Promise<{ adapter: RuntimeAdapter; part: SessionPart; place: Place }> {
  const { held } = await listParts(connect);
  const found = held.filter((h) => !runtime || h.place.runtime === runtime).flatMap((h) =>
    h.parts.filter((p) => p.kind === "sidecar" && p.name === name).map((part) => ({
      adapter: h.adapter,
      part,
      place: h.place,
    }))
  );
  const hint = "List the sessions with: dbg sessions";
  if (found.length === 0) throw new DbgError(`No dbg session ${name}`, { hint });
  if (found.length > 1) {
    throw new DbgError(`${name} is on ${found.map((f) => f.place.runtime).join(" and ")}`, {
      hint: `Name the runtime: dbg attach ${found[0].place.runtime} ${name}`,
    });
  }
  if (found[0].part.state !== "running") {
    throw new DbgError(`${name} has ended (state: ${found[0].part.state})`, { hint });
  }
  return found[0];
}

/** Ask every engine at once, each within `PROBE_TIMEOUT_MS`. */
async function askAll<T>(
  connect: ConnectOptions,
  ask: (adapter: RuntimeAdapter, place: Place) => Promise<{ found: T; id: string }>,
): Promise<Answer<T>[]> {
  const env: EndpointEnv = {
    env: (k) => Deno.env.get(k),
    home: Deno.env.get("HOME"),
    uid: Deno.uid(),
  };
  // Only the chosen engine's notices are the user's.
  const quiet = { ...connect, notice: undefined };
  const probes = [...await engineProbes(env, quiet), ...await containerdProbes(quiet)];
  return await Promise.all(probes.map(async (probe): Promise<Answer<T>> => {
    const { runtime, where, flags } = probe;
    const place = { runtime, where, flags };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const detail = `no answer within ${PROBE_TIMEOUT_MS / 1000}s`;
        const hint = `Name the runtime to wait for it: dbg ${runtime} …`;
        reject(new EngineUnreachable(`${runtime} at ${where}`, detail, { hint }));
      }, PROBE_TIMEOUT_MS);
    });
    try {
      const adapter = await Promise.race([probe.open(), late]);
      return { place, ...await Promise.race([ask(adapter, place), late]) };
    } catch (error) {
      connect.debug(`${runtime} at ${where}: ${error instanceof Error ? error.message : error}`);
      return { place, error };
    } finally {
      clearTimeout(timer);
    }
  }));
}

/** Docker's endpoint, and Podman's sockets unless Docker's is one of them. */
async function engineProbes(env: EndpointEnv, connect: ConnectOptions): Promise<Probe[]> {
  const { DockerAdapter } = await runtimeModule<typeof import("./docker.ts")>("docker");
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
    const none = new EngineUnreachable(`containerd: ${where}`, "", { hint: "", absent: true });
    return [{ runtime: "containerd", where, flags: [], open: () => Promise.reject(none) }];
  }
  const { ContainerdAdapter } = await runtimeModule<typeof import("./containerd.ts")>(
    "containerd",
  );
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
