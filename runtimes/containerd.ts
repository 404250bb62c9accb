/**
 * The containerd adapter: speaks containerd's gRPC API over its socket (protocols.md §2).
 * It translates the plan; the order of calls lives in lib/session.ts.
 *
 * Images are pulled by dbg itself (containerd/pull.ts): containerd 1.6 has no Transfer service.
 *
 * @module
 */

import type {
  ConnectOptions,
  PullProgress,
  RuntimeAdapter,
  SessionPart,
  Sidecar,
  TargetCopy,
  TargetFacts,
} from "../lib/adapter.ts";
import { EngineUnreachable, imageNotFound, ImageNotPresent } from "../lib/errors.ts";
import type { DebugPlan } from "../lib/plan.ts";
import { resolveAddress } from "./containerd/address.ts";
import { ContainerdClient } from "./containerd/client.ts";
import { createContainerdCopy } from "./containerd/copy.ts";
import { containerdName, localImage } from "./containerd/image.ts";
import { containerdParts, removeContainerdParts } from "./containerd/parts.ts";
import { pullImage } from "./containerd/pull.ts";
import { createContainerdSidecar } from "./containerd/sidecar.ts";
import { type ContainerRecord, resolveTarget } from "./containerd/target.ts";

export class ContainerdAdapter implements RuntimeAdapter {
  readonly name = "containerd";
  readonly supports = {
    keep: true,
    privileged: true,
    name: true,
    images: false,
    copy: false,
    attach: false,
  };
  readonly listHint = "ctr tasks ls";
  #client?: ContainerdClient;
  #debug: (msg: string) => void = () => {};
  #namespace?: string;
  #podNamespace?: string;
  #insecure: string[] = [];
  #target?: { container: ContainerRecord; hostPid: number; upper?: string };

  get client(): ContainerdClient {
    if (!this.#client) throw new Error("containerd adapter used before connect()");
    return this.#client;
  }

  async connect(opts: ConnectOptions): Promise<void> {
    this.#debug = opts.debug;
    this.#namespace = opts.namespace || Deno.env.get("CONTAINERD_NAMESPACE") || undefined;
    this.#podNamespace = opts.podNamespace;
    this.#insecure = opts.insecureRegistries ?? [];
    const { address, source } = await resolveAddress(opts.host, (k) => Deno.env.get(k));
    opts.debug(`containerd socket ${address} (from ${source})`);
    const client = new ContainerdClient(address);
    // The first connection says precisely why the socket cannot be used.
    try {
      await client.connection();
    } catch (e) {
      const reason = e instanceof Deno.errors.NotFound
        ? "no such socket"
        : e instanceof Deno.errors.PermissionDenied
        ? "permission denied"
        : e instanceof Deno.errors.ConnectionRefused
        ? "connection refused (containerd is not running)"
        : String(e);
      throw new EngineUnreachable(`Cannot connect to containerd at ${address}`, reason, {
        hint: e instanceof Deno.errors.PermissionDenied
          ? "Run dbg with sudo: containerd's socket belongs to root"
          : "Start containerd, or pass its socket with --address (or CONTAINERD_ADDRESS)",
        cause: e,
      });
    }
    this.#client = client;
  }

  async inspectTarget(target: string): Promise<TargetFacts> {
    const found = await resolveTarget(this.client, target, {
      namespace: this.#namespace,
      podNamespace: this.#podNamespace,
    });
    this.#target = found;
    this.#debug(
      `target ${found.container.namespace}/${found.container.id}, host pid ${found.hostPid}`,
    );
    return found.facts;
  }

  async ensureImage(
    ref: string,
    opts: { pull: "missing" | "always" | "never"; progress?: PullProgress },
  ): Promise<void> {
    const t = this.#needTarget();
    const ns = t.container.namespace;
    const snapshotter = t.container.snapshotter || "overlayfs";
    if (opts.pull === "never") {
      await localImage(this.client, ns, ref, snapshotter).catch((e) => {
        if (!(e instanceof ImageNotPresent)) throw e;
        throw imageNotFound(
          ref,
          `not in containerd namespace ${ns} and --pull never`,
          `Pull it first (ctr -n ${ns} images pull ${containerdName(ref)}) or drop --pull never`,
        );
      });
      return;
    }
    await pullImage(this.client, ref, {
      namespace: ns,
      snapshotter,
      insecure: this.#insecure,
      progress: opts.progress,
      debug: this.#debug,
    });
  }

  async createCopy(plan: DebugPlan, stop: AbortSignal): Promise<TargetCopy> {
    const t = this.#needTarget();
    const { copy, hostPid } = await createContainerdCopy(this.client, plan, stop, {
      original: t.container,
      upper: t.upper,
      debug: this.#debug,
    });
    // The sidecar joins the copy's namespaces, by its task's PID.
    t.hostPid = hostPid;
    return copy;
  }

  async createSidecar(plan: DebugPlan): Promise<Sidecar> {
    const t = this.#needTarget();
    const ns = t.container.namespace;
    const snapshotter = t.container.snapshotter || "overlayfs";
    // ImageNotPresent from here makes the lifecycle pull (ensureImage) and create again.
    const image = await localImage(this.client, ns, plan.image.ref, snapshotter);
    return await createContainerdSidecar(this.client, plan, {
      namespace: ns,
      snapshotter,
      imageName: image.name,
      chainId: image.chainId,
      hostPid: t.hostPid,
      debug: this.#debug,
    });
  }

  sessionParts(): Promise<SessionPart[]> {
    return containerdParts(this.client);
  }

  removeParts(parts: SessionPart[]): Promise<void> {
    return removeContainerdParts(this.client, parts);
  }

  #needTarget() {
    if (!this.#target) throw new Error("containerd adapter: inspectTarget() first");
    return this.#target;
  }
}

/** The containerd adapter. */
export const adapter: RuntimeAdapter = new ContainerdAdapter();
