/**
 * The Docker adapter: speaks the Engine API over the daemon's socket (see
 * ../shared/research/protocols.md §1). It translates the plan into API calls; the order of the
 * calls lives in lib/session.ts.
 *
 * @module
 */

import type {
  ConnectOptions,
  RuntimeAdapter,
  SessionPart,
  Sidecar,
  TargetCopy,
  TargetFacts,
} from "../lib/adapter.ts";
import { DbgError, ImageNotPresent, noSuchTarget, targetNotRunning } from "../lib/errors.ts";
import { capsFacts, type DebugPlan } from "../lib/plan.ts";
import { consoleSize } from "../lib/resize.ts";
import { hostProcessUser } from "./_host.ts";
import {
  createDockerCopy,
  imageFacts,
  type ImageJson,
  type StoppedContainer,
  stoppedFacts,
} from "./docker/copy.ts";
import { ensureDockerImage } from "./docker/image.ts";
import { compareVersions, describe, DockerApiError, DockerClient } from "./docker/http.ts";
import { DOCKER, type Engine } from "./docker/engine.ts";
import { dockerParts, removeDockerParts } from "./docker/parts.ts";
import { DockerSidecar } from "./docker/sidecar.ts";

/** The parts of `GET /containers/{id}/json` dbg reads. */
interface ContainerJson extends StoppedContainer {
  Name: string;
  State: StoppedContainer["State"] & {
    Running: boolean;
    Paused: boolean;
    Restarting: boolean;
    Pid: number;
  };
  Config: StoppedContainer["Config"] & { Image?: string };
  HostConfig: {
    PidMode?: string;
    IpcMode?: string;
    ReadonlyRootfs?: boolean;
    Privileged?: boolean;
    CapAdd?: string[] | null;
    CapDrop?: string[] | null;
  };
  Platform?: string;
}

/** The adapter for an engine that speaks the Engine API: Docker, or Podman's service. */
export class DockerAdapter implements RuntimeAdapter {
  readonly name: string;
  readonly supports = {
    keep: true,
    privileged: true,
    name: true,
    images: true,
    copy: false,
    attach: true,
  };
  readonly listHint: string;
  readonly engine: Engine;
  #client?: DockerClient;
  #debug: (msg: string) => void = () => {};

  constructor(engine: Engine) {
    this.engine = engine;
    this.name = engine.name;
    this.listHint = `${engine.cli} ps`;
  }

  get client(): DockerClient {
    if (!this.#client) throw new Error("docker adapter used before connect()");
    return this.#client;
  }

  async connect(opts: ConnectOptions): Promise<void> {
    this.#debug = opts.debug;
    const { endpoint, source } = await this.engine.resolve({
      host: opts.host,
      env: (k) => Deno.env.get(k),
      home: Deno.env.get("HOME"),
      uid: Deno.uid(),
    });
    opts.debug(`${this.name} endpoint ${describe(endpoint)} (from ${source})`);
    this.#client = new DockerClient(endpoint, { debug: opts.debug, engine: this.engine });
  }

  async inspectTarget(given: string): Promise<TargetFacts> {
    // docker's own "/name" form names the same container.
    const target = given.replace(/^\//, "");
    // The version negotiation and the inspect go out together (the inspect unversioned): one
    // round trip less before the sidecar exists. Both fail alike when the socket is missing.
    const [res] = await Promise.all([
      this.client.request<ContainerJson>(
        "GET",
        `/containers/${encodeURIComponent(target)}/json`,
        { okStatuses: [404], unversioned: true },
      ).catch(async (e) => {
        // An id prefix that several containers share.
        if (e instanceof DockerApiError && /multiple IDs found/i.test(e.message)) {
          throw await this.#ambiguous(target);
        }
        throw e;
      }),
      this.client.negotiate().then((v) => this.#debug(`${this.name} API version ${v}`)),
    ]);
    if (res.status === 404 || typeof res.body !== "object" || !res.body) {
      throw noSuchTarget(target, await this.#runningNames(), this.listHint);
    }
    const c = res.body;
    const name = c.Name.replace(/^\//, "");
    const running = c.State.Running && !c.State.Paused && !c.State.Restarting;
    if (c.State.Paused) {
      throw targetNotRunning(name, "paused", `${this.engine.cli} unpause ${name}`);
    }
    // Created, exited, dead, or between two runs of a restart policy: debugged through a copy.
    if (!running) return stoppedFacts(c, name);
    const pidMode = c.HostConfig.PidMode ?? "";
    const pidNamespace = pidMode === "host"
      ? "host"
      : pidMode.startsWith("container:")
      ? "shared"
      : "private";
    const ipcMode = c.HostConfig.IpcMode ?? "";
    const live = hostProcessUser(c.State.Pid, c.Id);
    return {
      id: c.Id,
      name,
      running,
      state: c.State.Status,
      // The sidecar joins the target's PID namespace: PID 1 when the target owns it, the host
      // PID in the host namespace, and a search by cgroup when it is another container's.
      pid: pidNamespace === "private" ? 1 : pidNamespace === "host" ? c.State.Pid : 0,
      pidNamespace,
      user: live?.user ?? c.Config.User ?? "",
      ...(live?.userNamespace ? { userNamespace: live.userNamespace } : {}),
      readOnlyRootfs: !!c.HostConfig.ReadonlyRootfs,
      privileged: !!c.HostConfig.Privileged,
      caps: capsFacts(c.HostConfig.CapAdd ?? [], c.HostConfig.CapDrop ?? []),
      cwd: c.Config.WorkingDir || "/",
      ipc: ipcMode === "shareable" || ipcMode === "host"
        ? ipcMode
        : ipcMode === "none"
        ? "none"
        : "private",
      platform: c.Platform,
    };
  }

  async #ambiguous(prefix: string): Promise<DbgError> {
    const res = await this.client.request<Array<{ Id: string; Names?: string[] }>>(
      "GET",
      "/containers/json?all=1",
    );
    const matches = (Array.isArray(res.body) ? res.body : []).filter((c) => c.Id.startsWith(prefix))
      .map((c) => `${c.Id.slice(0, 12)} (${(c.Names?.[0] ?? "").replace(/^\//, "")})`);
    return new DbgError(`${prefix} matches ${matches.length} containers: ${matches.join(", ")}`, {
      hint: "Pass a longer id prefix, or the container's name",
    });
  }

  async #runningNames(): Promise<string[]> {
    try {
      const res = await this.client.request<Array<{ Names?: string[] }>>("GET", "/containers/json");
      if (!Array.isArray(res.body)) return [];
      return res.body.map((c) => (c.Names?.[0] ?? "").replace(/^\//, "")).filter((n) => n);
    } catch (e) {
      this.#debug(`listing containers: ${e}`);
      return [];
    }
  }

  async inspectImage(ref: string): Promise<TargetFacts> {
    const res = await this.client.request<ImageJson>("GET", `/images/${ref}/json`);
    return imageFacts(res.body as ImageJson, ref);
  }

  createCopy(plan: DebugPlan, stop: AbortSignal): Promise<TargetCopy> {
    return createDockerCopy(this.client, plan, stop, this.#debug);
  }

  ensureImage: RuntimeAdapter["ensureImage"] = (ref, opts) =>
    ensureDockerImage(this.client, ref, { ...opts, debug: this.#debug });

  async createSidecar(plan: DebugPlan): Promise<Sidecar> {
    const s = plan.sidecar;
    if (s.existing) return await this.#existing(plan, s.existing);
    const target = plan.target.id;
    const ipcMode = !s.join.ipc ? undefined : s.join.ipcHost ? "host" : `container:${target}`;
    // ConsoleSize (API 1.42+) sizes the TTY before start; older daemons get the first resize.
    const initialSize = s.tty && compareVersions(this.client.apiVersion ?? "1.40", "1.42") >= 0
      ? consoleSizeArray()
      : undefined;
    const body = {
      Image: plan.image.ref,
      Entrypoint: s.argv.slice(0, 1),
      Cmd: s.argv.slice(1),
      Env: s.env,
      User: s.user ?? "",
      Tty: s.tty,
      OpenStdin: s.stdin,
      StdinOnce: s.stdin,
      AttachStdin: s.stdin,
      AttachStdout: true,
      AttachStderr: true,
      Labels: s.labels,
      HostConfig: {
        PidMode: `container:${target}`,
        NetworkMode: `container:${target}`,
        IpcMode: ipcMode,
        CapAdd: s.capAdd.length ? s.capAdd : undefined,
        CapDrop: s.capDrop.length ? s.capDrop : undefined,
        SecurityOpt: s.noNewPrivileges ? ["no-new-privileges"] : undefined,
        Privileged: s.privileged,
        // The daemon removes the sidecar when it exits, even if dbg is gone by then.
        AutoRemove: !plan.keep,
        ConsoleSize: initialSize,
      },
    };
    let res;
    try {
      res = await this.client.request<{ Id: string; Warnings?: string[] }>(
        "POST",
        "/containers/create",
        { query: { name: s.name }, body },
      );
    } catch (e) {
      throw createError(e, plan);
    }
    const id = (res.body as { Id: string }).Id;
    return new DockerSidecar(this.client, { id, name: s.name, plan, debug: this.#debug });
  }

  /** A running dbg sidecar to join (`dbg attach`), with the terminal it was made with. */
  async #existing(plan: DebugPlan, name: string): Promise<Sidecar> {
    const res = await this.client.request<{
      Id: string;
      State: { Running: boolean; Status: string };
      Config: { Tty?: boolean; Labels?: Record<string, string> | null };
    }>("GET", `/containers/${encodeURIComponent(name)}/json`, { okStatuses: [404] });
    const c = res.status === 404 ? undefined : res.body as Exclude<typeof res.body, string>;
    const hint = "List the sessions with: dbg sessions";
    if (!c?.Config.Labels?.["dbg.session"] || !c.State.Running) {
      throw new DbgError(
        `${name} is not a running dbg session${c ? ` (state: ${c.State.Status})` : ""}`,
        { hint },
      );
    }
    if (!!c.Config.Tty !== plan.sidecar.tty) {
      throw new DbgError(
        `${name} was started ${c.Config.Tty ? "with" : "without"} a TTY, and this terminal ` +
          `${plan.sidecar.tty ? "is one" : "is not"}`,
        { hint: c.Config.Tty ? "Attach from a terminal" : "Attach with -T (no TTY)" },
      );
    }
    return new DockerSidecar(this.client, { id: c.Id, name, plan, debug: this.#debug });
  }

  sessionParts(): Promise<SessionPart[]> {
    return dockerParts(this.client);
  }

  removeParts(parts: SessionPart[]): Promise<void> {
    return removeDockerParts(this.client, parts);
  }
}

function consoleSizeArray(): [number, number] | undefined {
  const size = consoleSize();
  return size && [size.rows, size.columns];
}

function createError(e: unknown, plan: DebugPlan): unknown {
  if (!(e instanceof DockerApiError)) return e;
  if (e.status === 409) {
    // The name may be anyone's container: dbg never suggests removing it.
    return new DbgError(`Cannot create sidecar ${plan.sidecar.name}: the name is in use`, {
      hint: "Pick another --name, or leave it out (dbg names its sidecars dbg-<session id>)",
      cause: e,
    });
  }
  if (e.status === 404 && /image/i.test(e.message)) return new ImageNotPresent(plan.image.ref, e);
  return new DbgError(`Cannot create the sidecar: ${e.message}`, {
    hint: "Run with --debug for the request details",
    cause: e,
  });
}

/** The Docker adapter. */
export const adapter: RuntimeAdapter = new DockerAdapter(DOCKER);
