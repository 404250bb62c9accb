/**
 * Pods of dbg's own on Kubernetes, which an ephemeral container then debugs as it debugs any
 * running container (the whole session path stays the same):
 *
 * - a **copy** of a pod (`--copy`): the same spec on the same node, with the target container's
 *   command replaced by dbg's keeper, so that it runs whatever its state was; no probes,
 *   `restartPolicy: Never`, shared process namespace, and no labels or owners of the original's,
 *   so that no Service routes to it and no controller adopts it;
 * - a **node pod** (`node/NAME`): the host's PID, network and IPC namespaces, and the node's root
 *   filesystem mounted at `/host` (as kubectl debug node/… does), which the session shows as `/`.
 *   (The root of the node's PID 1 is not always readable: a sandbox's init may refuse even a
 *   privileged reader.)
 *
 * The keeper (runtimes/_keeper.ts) reaches the pod through an emptyDir, written by an init
 * container of the debugger image with `printf` (it runs as nobody, with nothing added).
 *
 * @module
 */

import type * as k8s from "@kubernetes/client-node";
import type { TargetCopy } from "../../lib/adapter.ts";
import { DbgError } from "../../lib/errors.ts";
import type { DebugPlan } from "../../lib/plan.ts";
import { KEEPER_DIR, KEEPER_PATH, keeperElf } from "../_keeper.ts";
import type { Kube } from "./api.ts";
import { literal, PULL_POLICY } from "./spec.ts";
import { waitForContainer } from "./wait.ts";

/** The container of a node pod that holds the keeper. */
export const NODE_CONTAINER = "node";

/** Where a node pod mounts the node's root filesystem (as kubectl debug node/… does). */
export const NODE_ROOT = "/host";

/** The init container's script: the keeper for the node's architecture, as printf octal. */
export function keeperScript(keeper = KEEPER_PATH): string {
  const octal = (b: Uint8Array) => Array.from(b, (x) => `\\${x.toString(8).padStart(3, "0")}`);
  return [
    "case $(uname -m) in",
    `x86_64) printf '${octal(keeperElf("amd64")).join("")}' ;;`,
    `aarch64 | arm64) printf '${octal(keeperElf("arm64")).join("")}' ;;`,
    `*) echo "dbg: no keeper for $(uname -m)" >&2; exit 1 ;;`,
    `esac > ${keeper} && chmod 755 ${keeper}`,
  ].join("\n");
}

/** The volume, init container and mount that bring the keeper into a pod. */
function keeperParts(plan: DebugPlan) {
  const volume = `dbg-keeper-${plan.runId}`;
  const init: k8s.V1Container = {
    name: `dbg-keeper-${plan.runId}`,
    image: plan.image.ref,
    imagePullPolicy: PULL_POLICY[plan.pull],
    command: ["/bin/sh", "-c", literal(keeperScript())],
    volumeMounts: [{ name: volume, mountPath: KEEPER_DIR }],
    // What Pod Security "restricted" allows: it only writes a file into an emptyDir (0777).
    securityContext: {
      runAsUser: 65534,
      runAsGroup: 65534,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
  };
  return {
    init,
    volume: { name: volume, emptyDir: {} } as k8s.V1Volume,
    mount: { name: volume, mountPath: KEEPER_DIR, readOnly: true } as k8s.V1VolumeMount,
  };
}

function labels(plan: DebugPlan, extra: Record<string, string>): Record<string, string> {
  return { "dbg.session": plan.runId, ...extra };
}

/** A container without what would run on its own: probes (and, for the target, hooks). */
function quiet(c: k8s.V1Container): k8s.V1Container {
  const { livenessProbe: _l, readinessProbe: _r, startupProbe: _s, ...rest } = c;
  return rest;
}

/** The copy of `pod` in which container `target` runs the keeper (see the module doc). */
export function copyPod(pod: k8s.V1Pod, target: string, plan: DebugPlan): k8s.V1Pod {
  const { init, volume, mount } = keeperParts(plan);
  const spec = structuredClone(pod.spec ?? { containers: [] });
  delete spec.ephemeralContainers;
  // Admission fills these in from the priority class again.
  delete spec.priority;
  delete spec.preemptionPolicy;
  spec.containers = spec.containers.map((c) => {
    if (c.name !== target) return quiet(c);
    const { lifecycle: _hooks, args: _args, ...rest } = quiet(c);
    return {
      ...rest,
      command: [KEEPER_PATH],
      stdin: false,
      tty: false,
      volumeMounts: [...(c.volumeMounts ?? []), mount],
    };
  });
  spec.initContainers = [...(spec.initContainers ?? []).map(quiet), init];
  spec.volumes = [...(spec.volumes ?? []), volume];
  spec.restartPolicy = "Never";
  spec.shareProcessNamespace = true;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: plan.copy?.name,
      labels: labels(plan, { "dbg.copy-of": pod.metadata?.name ?? "" }),
    },
    spec,
  };
}

/**
 * A pod on node `node` in the host's PID, network and IPC namespaces, with the node's root
 * filesystem at {@link NODE_ROOT} (see the module doc).
 */
export function nodePod(node: string, plan: DebugPlan): k8s.V1Pod {
  const { init, volume, mount } = keeperParts(plan);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: plan.copy?.name, labels: labels(plan, { "dbg.node": node }) },
    spec: {
      nodeName: node,
      hostPID: true,
      hostNetwork: true,
      hostIPC: true,
      restartPolicy: "Never",
      // As kubectl debug node/…: a tainted node takes it too.
      tolerations: [{ operator: "Exists" }],
      initContainers: [init],
      containers: [{
        name: NODE_CONTAINER,
        image: plan.image.ref,
        imagePullPolicy: PULL_POLICY[plan.pull],
        command: [KEEPER_PATH],
        volumeMounts: [mount, { name: "node-root", mountPath: NODE_ROOT }],
        securityContext: init.securityContext,
      }],
      volumes: [volume, { name: "node-root", hostPath: { path: "/" } }],
    },
  };
}

/** The running pod, and its keeper container's id (the entry script finds it by that). */
export interface MadePod {
  pod: k8s.V1Pod;
  keeperId: string;
  copy: TargetCopy;
}

/**
 * Create `pod` in `namespace` and wait until container `keeper` runs. On failure, or once `stop`
 * is aborted, the pod is deleted before this throws.
 */
export async function createHelperPod(
  kube: Kube,
  o: {
    pod: k8s.V1Pod;
    namespace: string;
    keeper: string;
    timeoutMs: number;
    stop: AbortSignal;
    debug: (msg: string) => void;
    notice: (msg: string) => void;
  },
): Promise<MadePod> {
  const { namespace } = o;
  const name = o.pod.metadata?.name ?? "";
  const created = await kube.call(
    { verb: "create", resource: "pods", namespace },
    () => kube.core.createNamespacedPod({ namespace, body: o.pod }),
  );
  o.debug(`created pod ${name}`);
  const remove = async () => {
    await kube.call(
      { verb: "delete", resource: "pods", name, namespace },
      () => kube.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }),
    ).catch((e) => {
      if (!(e instanceof DbgError && e.message.startsWith("No such pod"))) throw e;
    });
  };
  try {
    const state = await waitForContainer(kube, {
      namespace,
      pod: name,
      name: o.keeper,
      ephemeral: false,
      rv: created.metadata?.resourceVersion,
      timeoutMs: o.timeoutMs,
      stop: o.stop,
      debug: o.debug,
      notice: o.notice,
    });
    if (!state.running) {
      const t = state.terminated;
      throw new DbgError(`The keeper of pod ${name} ended: ${t?.reason ?? t?.exitCode}`, {
        hint: `See why: kubectl -n ${namespace} describe pod ${name}`,
      });
    }
    const pod = await kube.call(
      { verb: "get", resource: "pods", name, namespace },
      () => kube.core.readNamespacedPod({ name, namespace }),
    );
    const status = (pod.status?.containerStatuses ?? []).find((s) => s.name === o.keeper);
    const keeperId = (status?.containerID ?? "").replace(/^[a-z0-9-]+:\/\//, "");
    return { pod, keeperId, copy: { remove } };
  } catch (e) {
    await remove().catch((r) => o.debug(`deleting pod ${name}: ${r}`));
    throw e;
  }
}
