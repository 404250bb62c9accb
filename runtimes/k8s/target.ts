/**
 * Resolving `dbg k8s` targets: `POD[/CONTAINER]`, `pod/POD[/C]`, `deploy/NAME[/C]`,
 * `sts/NAME[/C]`, to one running container of one pod, and the TargetFacts of it.
 *
 * @module
 */

import type * as k8s from "@kubernetes/client-node";
import type { TargetFacts } from "../../lib/adapter.ts";
import { endedText } from "../../lib/ended.ts";
import { DbgError, usageError } from "../../lib/errors.ts";
import { capsFacts } from "../../lib/plan.ts";
import type { Kube } from "./api.ts";
import { NODE_ROOT } from "./copy.ts";

/** A parsed target reference. */
export interface TargetRef {
  kind: "pod" | "deployment" | "statefulset";
  name: string;
  container?: string;
}

const KINDS: Record<string, TargetRef["kind"]> = {
  pod: "pod",
  pods: "pod",
  po: "pod",
  deploy: "deployment",
  deployment: "deployment",
  deployments: "deployment",
  sts: "statefulset",
  statefulset: "statefulset",
  statefulsets: "statefulset",
};

/** Parse `POD[/C]` or `KIND/NAME[/C]`. */
export function parseTarget(text: string): TargetRef {
  const parts = text.split("/");
  const bad = () =>
    usageError(
      `Bad target "${text}": expected POD[/CONTAINER], pod/POD[/C], deploy/NAME[/C] or sts/NAME[/C]`,
      "See: dbg k8s --help",
    );
  if (parts.some((p) => p === "") || parts.length > 3) throw bad();
  const kind = KINDS[parts[0].toLowerCase()];
  if (parts.length === 3 || (parts.length === 2 && kind && kind !== "pod")) {
    if (!kind) throw bad();
    return { kind, name: parts[1], container: parts[2] };
  }
  if (parts.length === 2 && kind === "pod") return { kind, name: parts[1] };
  // POD/CONTAINER: a pod can be called "deploy", but then deploy/NAME means the deployment.
  return { kind: "pod", name: parts[0], container: parts[1] };
}

/** kubectl's default container: the annotation, else the first. */
export const DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container";

/** Pick the target container of a pod (explicit name, annotation, else the first). */
export function pickContainer(pod: k8s.V1Pod, wanted?: string): k8s.V1Container {
  const containers = pod.spec?.containers ?? [];
  const name = wanted ?? pod.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION];
  if (name === undefined) return containers[0];
  const c = containers.find((c) => c.name === name);
  if (c) return c;
  const names = containers.map((c) => c.name).join(", ");
  throw new DbgError(`Pod ${pod.metadata?.name} has no container "${name}" (it has: ${names})`, {
    hint: `Pick one: dbg k8s ${pod.metadata?.name}/${containers[0]?.name ?? "CONTAINER"}`,
  });
}

/** Whether a pod is Running and Ready. */
export function podReady(pod: k8s.V1Pod): boolean {
  return pod.status?.phase === "Running" &&
    (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

/** The first ready pod (oldest first, then by name), else the first running one. */
export function pickPod(pods: k8s.V1Pod[]): k8s.V1Pod | undefined {
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
  const sorted = [...live].sort((a, b) =>
    String(a.metadata?.creationTimestamp ?? "").localeCompare(
      String(b.metadata?.creationTimestamp ?? ""),
    ) || String(a.metadata?.name).localeCompare(String(b.metadata?.name))
  );
  return sorted.find(podReady) ?? sorted.find((p) => p.status?.phase === "Running");
}

/**
 * The user a container runs as: the ids the runtime reports (`status.user`, where the runtime
 * supports it), else its and the pod's securityContext. Without a runAsGroup the runtime takes
 * the group from the image's /etc/passwd; dbg assumes it equals the uid, as it does in most
 * images (65532:65532 in distroless), since reading the target's files as its user takes both.
 */
function securityOf(pod: k8s.V1Pod, c: k8s.V1Container) {
  const ps = pod.spec?.securityContext ?? {};
  const cs = c.securityContext ?? {};
  const live = (pod.status?.containerStatuses ?? []).find((s) => s.name === c.name)?.user?.linux;
  const uid = live?.uid ?? cs.runAsUser ?? ps.runAsUser;
  const gid = live?.gid ?? cs.runAsGroup ?? ps.runAsGroup ?? (uid ? uid : undefined);
  return {
    uid: uid === undefined ? undefined : Number(uid),
    gid: gid === undefined ? undefined : Number(gid),
    runAsNonRoot: !!(cs.runAsNonRoot ?? ps.runAsNonRoot),
  };
}

/** The Pod Security levels dbg knows (`enforce` label values). */
const PSA_LEVELS = ["privileged", "baseline", "restricted"] as const;

/**
 * TargetFacts of container `c` of `pod`. The ephemeral container joins the target's PID
 * namespace (targetContainerName), so the target is PID 1 there, unless the pod shares one
 * namespace among its containers (then PID 1 is the pause process and the entry script finds
 * the target by its container id in /proc/<pid>/cgroup).
 */
export function factsOf(pod: k8s.V1Pod, c: k8s.V1Container, psaLabel?: string): TargetFacts {
  const status = (pod.status?.containerStatuses ?? []).find((s) => s.name === c.name);
  const state = status?.state?.running
    ? "running"
    : status?.state?.terminated
    ? "terminated"
    : status?.state?.waiting
    ? `waiting (${status.state.waiting.reason ?? "?"})`
    : "unknown";
  const sec = securityOf(pod, c);
  const shared = !!pod.spec?.shareProcessNamespace;
  const psa = psaLevel(psaLabel);
  return {
    id: (status?.containerID ?? "").replace(/^[a-z0-9-]+:\/\//, ""),
    name: `${pod.metadata?.name}/${c.name}`,
    running: pod.status?.phase === "Running" && state === "running",
    state,
    pid: shared ? 0 : 1,
    pidNamespace: shared ? "shared" : "private",
    user: sec.uid === undefined ? "" : `${sec.uid}${sec.gid === undefined ? "" : `:${sec.gid}`}`,
    readOnlyRootfs: !!c.securityContext?.readOnlyRootFilesystem,
    privileged: !!c.securityContext?.privileged,
    caps: capsFacts(c.securityContext?.capabilities?.add, c.securityContext?.capabilities?.drop),
    cwd: c.workingDir ?? "",
    ipc: "private",
    security: { psa, runAsNonRoot: sec.runAsNonRoot },
  };
}

function psaLevel(label: string | undefined): "" | typeof PSA_LEVELS[number] {
  return (PSA_LEVELS as readonly string[]).includes(label ?? "")
    ? label as typeof PSA_LEVELS[number]
    : "";
}

/** A workload's selector in the `labelSelector` query syntax (matchLabels and expressions). */
export function labelSelector(sel: k8s.V1LabelSelector | undefined): string {
  const parts = Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(",");
    if (e.operator === "In") parts.push(`${e.key} in (${values})`);
    else if (e.operator === "NotIn") parts.push(`${e.key} notin (${values})`);
    else if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
  }
  return parts.join(",");
}

/** A resolved target. */
export interface ResolvedTarget {
  pod: k8s.V1Pod;
  container: k8s.V1Container;
  namespace: string;
  facts: TargetFacts;
  /** Said to the user when dbg picked the pod (deploy/, sts/). */
  picked?: string;
}

/**
 * Resolve the user's reference to a running container, or fail with what to do. With `copy`,
 * the container may be in any state: the facts then describe its copy (k8s/copy.ts).
 */
export async function resolveTarget(
  kube: Kube,
  text: string,
  opts: { copy?: boolean } = {},
): Promise<ResolvedTarget> {
  const ref = parseTarget(text);
  const namespace = kube.namespace;
  // The namespace's level is asked beside the pod (namespaceLevel never fails).
  const level = namespaceLevel(kube, namespace);
  let pod: k8s.V1Pod;
  let picked: string | undefined;
  if (ref.kind === "pod") {
    pod = await kube.call(
      { verb: "get", resource: "pods", name: ref.name, namespace },
      () => kube.core.readNamespacedPod({ name: ref.name, namespace }),
    );
  } else {
    const short = ref.kind === "deployment" ? "deploy" : "sts";
    const resource = `${ref.kind}s.apps`;
    const ctx = { verb: "get", resource, name: ref.name, namespace };
    const workload = ref.kind === "deployment"
      ? await kube.call(
        ctx,
        () => kube.apps.readNamespacedDeployment({ name: ref.name, namespace }),
      )
      : await kube.call(
        ctx,
        () => kube.apps.readNamespacedStatefulSet({ name: ref.name, namespace }),
      );
    const selector = labelSelector(workload.spec?.selector);
    if (!selector) {
      throw new DbgError(`${short}/${ref.name} has an empty pod selector`, {
        hint: "Name the pod instead: dbg k8s POD",
      });
    }
    const list = await kube.call(
      { verb: "list", resource: "pods", namespace },
      () => kube.core.listNamespacedPod({ namespace, labelSelector: selector }),
    );
    const chosen = pickPod(list.items);
    if (!chosen) {
      throw new DbgError(`${short}/${ref.name} has no running pod in namespace ${namespace}`, {
        hint: `Check it with: kubectl -n ${namespace} get pods -l ${selector}`,
      });
    }
    pod = chosen;
    picked = `dbg: ${short}/${ref.name}: using pod ${pod.metadata?.name}`;
  }
  const podName = pod.metadata?.name ?? ref.name;
  const phase = pod.status?.phase ?? "Unknown";
  const container = pickContainer(pod, ref.container);
  const facts = factsOf(pod, container, await level);
  if (opts.copy) {
    return { pod, container, namespace, facts: copyFacts(pod, container, facts), picked };
  }
  if (phase === "Pending") {
    throw new DbgError(`Pod ${podName} is not running yet (phase Pending)`, {
      hint: `Wait until it runs (kubectl -n ${namespace} get pod ${podName} -w)`,
    });
  }
  if (!facts.running) {
    const how = phase === "Running" ? facts.name : `Pod ${podName}`;
    throw new DbgError(`${how} is not running: ${deadState(pod, container, phase)}`, {
      hint: `Debug a copy of the pod in which ${container.name} runs the debugger: ` +
        `dbg k8s -n ${namespace} ${podName}/${container.name} --copy`,
    });
  }
  return { pod, container, namespace, facts, picked };
}

/** How a container that does not run got there, in one line: its state and its last end. */
export function deadState(pod: k8s.V1Pod, c: k8s.V1Container, phase: string): string {
  const st = (pod.status?.containerStatuses ?? []).find((s) => s.name === c.name);
  const now = st?.state?.waiting?.reason ??
    (st?.state?.terminated ? "terminated" : `phase ${phase}`);
  const t = st?.state?.terminated ?? st?.lastState?.terminated;
  const n = st?.restartCount ?? 0;
  const restarts = n ? `, restarted ${n} time${n === 1 ? "" : "s"}` : "";
  const last = t ? `; it ${endedOf(t)}` : "";
  return `${phase === "Running" ? now : `phase ${phase}`}${restarts}${last}`;
}

function endedOf(t: k8s.V1ContainerStateTerminated): string {
  const at = t.finishedAt ? new Date(t.finishedAt).toISOString() : undefined;
  return endedText({ code: t.exitCode, at, reason: t.reason });
}

/**
 * The facts of the copy of container `c`: in the copy pod (shared process namespace) the entry
 * script finds the keeper by its container id, which the adapter learns once the copy runs.
 */
export function copyFacts(pod: k8s.V1Pod, c: k8s.V1Container, facts: TargetFacts): TargetFacts {
  const st = (pod.status?.containerStatuses ?? []).find((s) => s.name === c.name);
  const t = st?.state?.terminated ?? st?.lastState?.terminated;
  const ended = facts.running
    ? "is running"
    : t
    ? `${st?.state?.waiting?.reason ? `is in ${st.state.waiting.reason}; it last ` : ""}${
      endedOf(t)
    }`
    : `is ${facts.state}`;
  return {
    ...facts,
    running: false,
    pid: 0,
    pidNamespace: "shared",
    copy: {
      ended,
      entrypoint: [...c.command ?? [], ...c.args ?? []],
      volumes: (c.volumeMounts ?? []).length > 0,
      // A new container starts from its image, as a restarted one does.
      lost: "the files it wrote",
    },
  };
}

/** The facts of node `name`, debugged from a pod in its namespaces (k8s/copy.ts). */
export async function resolveNode(kube: Kube, name: string): Promise<TargetFacts> {
  const node = await kube.call(
    { verb: "get", resource: "nodes", name },
    () => kube.core.readNode({ name }),
  );
  const psa = await namespaceLevel(kube, kube.namespace);
  return {
    id: node.metadata?.name ?? name,
    name: `node/${name}`,
    running: false,
    state: "node",
    // The sidecar finds the node pod's keeper among the host's processes, and the node's root
    // filesystem in its root at /host (NODE_ROOT); the node's PID 1 may not be readable.
    pid: 0,
    pidNamespace: "host",
    rootPath: NODE_ROOT,
    user: "0:0",
    readOnlyRootfs: false,
    privileged: false,
    cwd: "/",
    ipc: "host",
    security: { psa: psaLevel(psa), runAsNonRoot: false },
    copy: {
      ended: "",
      entrypoint: [],
      volumes: false,
      banner: `dbg: node/${name}: this session runs in a pod of dbg's in the node's PID, ` +
        `network and IPC namespaces; changes to the node's files are real`,
    },
  };
}

/**
 * The namespace's Pod Security `enforce` level. Reading namespaces takes a permission many users
 * lack; then the level is unknown (""), and a rejection names the fix when it comes.
 */
async function namespaceLevel(kube: Kube, name: string): Promise<string> {
  try {
    const ns = await kube.core.readNamespace({ name });
    return ns.metadata?.labels?.["pod-security.kubernetes.io/enforce"] ?? "";
  } catch {
    return "";
  }
}
