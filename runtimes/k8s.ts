/**
 * The Kubernetes adapter: an ephemeral container in the target's pod (protocols.md §3), through
 * the API server. It translates the plan; the order of calls lives in lib/session.ts.
 *
 * The kubelet pulls images, so `ensureImage` has nothing to do: the plan's pull policy becomes
 * the container's `imagePullPolicy`, and pull failures arrive as Waiting reasons.
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
import { DbgError } from "../lib/errors.ts";
import type { DebugPlan } from "../lib/plan.ts";
import { Kube } from "./k8s/api.ts";
import { k8sParts, removeK8sParts } from "./k8s/parts.ts";
import { K8sSidecar } from "./k8s/sidecar.ts";
import { copyPod, createHelperPod, NODE_CONTAINER, nodePod } from "./k8s/copy.ts";
import { ephemeralContainer, helperPodsTable, sessionRows, sessionsTable } from "./k8s/spec.ts";
import { type ResolvedTarget, resolveNode, resolveTarget } from "./k8s/target.ts";

/** Default wait for the ephemeral container to start (kubectl has none; 2 minutes here). */
const DEFAULT_TIMEOUT_MS = 120_000;

/** Where the sidecar goes: a pod, its container to target, and the pod's namespace. */
type PodTarget = Pick<ResolvedTarget, "pod" | "container" | "namespace">;

class K8sAdapter implements RuntimeAdapter {
  readonly name = "k8s";
  readonly supports = {
    keep: true,
    privileged: true,
    name: false,
    images: false,
    copy: true,
    attach: true,
  };
  readonly listHint = "kubectl get pods";
  #kube?: Kube;
  #opts?: ConnectOptions;
  /** The pod and container the sidecar goes into: the target's, or a copy's or node pod's. */
  #target?: PodTarget;
  /** `node/NAME`. */
  #node?: string;
  /** The container id of the keeper in a copy (the entry script finds the target by it). */
  #keeperId?: string;

  async connect(opts: ConnectOptions): Promise<void> {
    this.#opts = opts;
    this.#kube = await Kube.load({
      kubeconfig: opts.kubeconfig,
      context: opts.context,
      namespace: opts.namespace,
      env: (k) => Deno.env.get(k),
      debug: opts.debug,
    });
  }

  async inspectTarget(target: string): Promise<TargetFacts> {
    if (target.startsWith("node/")) {
      this.#node = target.slice("node/".length);
      return await resolveNode(this.#need(), this.#node);
    }
    const { facts, picked, ...t } = await resolveTarget(this.#need(), target, {
      copy: this.#opts?.copy,
    });
    this.#target = t;
    if (picked) this.#opts?.notice?.(picked);
    return facts;
  }

  /**
   * Create the copy of the target's pod, or the node's pod, and wait until its keeper runs; the
   * sidecar then goes into that pod (see k8s/copy.ts).
   */
  async createCopy(plan: DebugPlan, stop: AbortSignal): Promise<TargetCopy> {
    const kube = this.#need();
    const opts = this.#opts!;
    const t = this.#target;
    const notice = opts.notice ?? (() => {});
    if (t && !t.container.command) {
      notice(
        `dbg: the pod does not name ${t.container.name}'s command: $DBG_ENTRYPOINT holds its ` +
          "args only, without its image's ENTRYPOINT",
      );
    }
    const keeper = t ? t.container.name : NODE_CONTAINER;
    const made = await createHelperPod(kube, {
      pod: t ? copyPod(t.pod, keeper, plan) : nodePod(this.#node ?? "", plan),
      namespace: t?.namespace ?? kube.namespace,
      keeper,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      stop,
      debug: opts.debug,
      notice,
    });
    const container = made.pod.spec!.containers.find((c) => c.name === keeper)!;
    this.#target = {
      pod: made.pod,
      container,
      namespace: made.pod.metadata?.namespace ?? kube.namespace,
    };
    // The keeper shares a PID namespace with others (the copy's, or the host's for a node): the
    // entry script finds it by its container id.
    this.#keeperId = made.keeperId;
    return made.copy;
  }

  /** The kubelet pulls: nothing to do here (see the module doc). */
  ensureImage(
    _ref: string,
    _opts: { pull: "missing" | "always" | "never"; progress?: PullProgress },
  ): Promise<void> {
    return Promise.resolve();
  }

  async createSidecar(plan: DebugPlan): Promise<Sidecar> {
    const t = this.#needTarget();
    const opts = this.#opts!;
    const common = {
      kube: this.#need(),
      namespace: t.namespace,
      pod: t.pod.metadata!.name!,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      debug: opts.debug,
      notice: opts.notice ?? (() => {}),
    };
    const existing = plan.sidecar.existing;
    if (existing) {
      const ec = (t.pod.spec?.ephemeralContainers ?? []).find((c) => c.name === existing);
      const st = (t.pod.status?.ephemeralContainerStatuses ?? []).find((s) => s.name === existing);
      if (!ec || !st?.state?.running) {
        throw new DbgError(
          `${existing} is not a running container of pod ${common.pod}` +
            (!ec ? "" : st?.state?.terminated ? " (it has ended)" : " (it has not started)"),
          { hint: `List the sessions with: dbg k8s -n ${t.namespace} ${common.pod} --sessions` },
        );
      }
      if (!!ec.tty !== plan.sidecar.tty) {
        throw new DbgError(
          `${existing} was started ${ec.tty ? "with" : "without"} a TTY, and this terminal ` +
            `${plan.sidecar.tty ? "is one" : "is not"}`,
          { hint: ec.tty ? "Reattach from a terminal" : "Reattach with -T (no TTY)" },
        );
      }
      return new K8sSidecar(plan, common);
    }
    const { container, skippedMounts } = ephemeralContainer(plan, t.container, this.#keeperId);
    if (skippedMounts.length > 0) {
      common.notice(
        `dbg: not mounting ${skippedMounts.join(", ")}: ephemeral containers take no subPath ` +
          `mounts (the files are still under the target's root)`,
      );
    }
    const sidecar = new K8sSidecar(plan, { ...common, container });
    await sidecar.add();
    // In a copy or a node's pod it goes with the pod.
    if (!plan.copy) {
      common.notice(
        `dbg: ${container.name} stays in the pod afterwards (ephemeral containers cannot be ` +
          `removed; see --sessions)`,
      );
    }
    return sidecar;
  }

  /** `--sessions`: the dbg containers of the target's pod, and dbg's pods in its namespace. */
  async listSessions(): Promise<string> {
    const kube = this.#need();
    const namespace = this.#target?.namespace ?? kube.namespace;
    const list = await kube.call(
      { verb: "list", resource: "pods", namespace },
      () => kube.core.listNamespacedPod({ namespace, labelSelector: "dbg.session" }),
    );
    const pods = helperPodsTable(list.items);
    const t = this.#target;
    if (!t) return pods;
    const name = t.pod.metadata?.name ?? "";
    const rows = sessionRows(t.pod);
    const tail = rows.length > 0
      ? "\nEphemeral containers stay in the pod until it is deleted; reattach with --attach NAME."
      : "";
    return `${sessionsTable(name, rows)}${tail}\n\n${pods}`;
  }

  sessionParts(): Promise<SessionPart[]> {
    return k8sParts(this.#need());
  }

  removeParts(parts: SessionPart[]): Promise<void> {
    return removeK8sParts(this.#need(), parts);
  }

  #need(): Kube {
    if (!this.#kube) throw new Error("k8s adapter used before connect()");
    return this.#kube;
  }

  #needTarget(): PodTarget {
    if (!this.#target) throw new Error("k8s adapter: inspectTarget() first");
    return this.#target;
  }
}

/** The Kubernetes adapter. */
export const adapter: RuntimeAdapter = new K8sAdapter();
