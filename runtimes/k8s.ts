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
  Sidecar,
  TargetFacts,
} from "../lib/adapter.ts";
import { DbgError } from "../lib/errors.ts";
import type { DebugPlan } from "../lib/plan.ts";
import { Kube } from "./k8s/api.ts";
import { K8sSidecar } from "./k8s/sidecar.ts";
import { ephemeralContainer, sessionRows, sessionsTable } from "./k8s/spec.ts";
import { type ResolvedTarget, resolveTarget } from "./k8s/target.ts";

/** Default wait for the ephemeral container to start (kubectl has none; 2 minutes here). */
const DEFAULT_TIMEOUT_MS = 120_000;

class K8sAdapter implements RuntimeAdapter {
  readonly name = "k8s";
  readonly supports = { keep: false, privileged: true, name: false, images: false };
  readonly listHint = "kubectl get pods";
  #kube?: Kube;
  #opts?: ConnectOptions;
  #target?: ResolvedTarget;

  connect(opts: ConnectOptions): Promise<void> {
    this.#opts = opts;
    this.#kube = Kube.load({
      kubeconfig: opts.kubeconfig,
      context: opts.context,
      namespace: opts.namespace,
      env: (k) => Deno.env.get(k),
      debug: opts.debug,
    });
    return Promise.resolve();
  }

  async inspectTarget(target: string): Promise<TargetFacts> {
    const t = await resolveTarget(this.#need(), target);
    this.#target = t;
    if (t.picked) this.#opts?.notice?.(t.picked);
    return t.facts;
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
    const { container, skippedMounts } = ephemeralContainer(plan, t.container);
    if (skippedMounts.length > 0) {
      common.notice(
        `dbg: not mounting ${skippedMounts.join(", ")}: ephemeral containers take no subPath ` +
          `mounts (the files are still under the target's root)`,
      );
    }
    const sidecar = new K8sSidecar(plan, { ...common, container });
    await sidecar.add();
    common.notice(
      `dbg: ${container.name} stays in the pod afterwards (ephemeral containers cannot be ` +
        `removed; see --sessions)`,
    );
    return sidecar;
  }

  /** `--sessions`: the dbg containers of the target's pod. */
  listSessions(): Promise<string> {
    const t = this.#needTarget();
    const name = t.pod.metadata?.name ?? "";
    const rows = sessionRows(t.pod);
    const tail = rows.length > 0
      ? "\nEphemeral containers stay in the pod until it is deleted; reattach with --attach NAME."
      : "";
    return Promise.resolve(sessionsTable(name, rows) + tail);
  }

  #need(): Kube {
    if (!this.#kube) throw new Error("k8s adapter used before connect()");
    return this.#kube;
  }

  #needTarget(): ResolvedTarget {
    if (!this.#target) throw new Error("k8s adapter: inspectTarget() first");
    return this.#target;
  }
}

/** The Kubernetes adapter. */
export const adapter: RuntimeAdapter = new K8sAdapter();
