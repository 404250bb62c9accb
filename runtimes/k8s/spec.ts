/**
 * The ephemeral container dbg adds to a pod, built from the plan (pure, unit-tested), and the
 * table of dbg's containers in a pod for `--sessions`.
 *
 * @module
 */

import type * as k8s from "@kubernetes/client-node";
import { DbgError } from "../../lib/errors.ts";
import type { DebugPlan } from "../../lib/plan.ts";

/**
 * How long the entry script waits for dbg to attach before it gives up (seconds): a dbg killed
 * before its session began leaves nothing running for longer (issue 12: 30 s at most).
 */
export const GO_TIMEOUT_S = 25;

/** The label-like marker dbg leaves in its containers' environment (ECs have no labels). */
export const SESSION_ENV = "DBG_SESSION";

export const PULL_POLICY: Record<DebugPlan["pull"], string> = {
  missing: "IfNotPresent",
  always: "Always",
  never: "Never",
};

/**
 * Kubernetes expands `$(NAME)` in a container's command, args and env values, and turns `$$`
 * into `$`. The entry script and the user's command must arrive as written: double every `$`.
 */
export function literal(text: string): string {
  return text.replaceAll("$", "$$$$");
}

/** `UID[:GID]` from the plan's user; Kubernetes takes numbers only. */
export function numericUser(user: string): { uid: number; gid?: number } {
  const [u, g] = user.split(":");
  if (!/^\d+$/.test(u) || (g !== undefined && !/^\d+$/.test(g))) {
    throw new DbgError(`Kubernetes needs a numeric user, not "${user}"`, {
      hint: "Pass -u UID[:GID] (the numbers from the target's /etc/passwd)",
    });
  }
  return { uid: Number(u), ...(g !== undefined ? { gid: Number(g) } : {}) };
}

/**
 * The securityContext for the plan: kubectl debug's profiles, plus the user and capabilities
 * the target shell needs. `restricted` is what Pod Security "restricted" allows; `baseline` adds
 * nothing; `general` and `netadmin` add capabilities; `sysadmin` is privileged.
 */
export function securityContext(plan: DebugPlan): k8s.V1SecurityContext {
  const s = plan.sidecar;
  const sc: k8s.V1SecurityContext = {};
  if (s.user !== undefined) {
    const { uid, gid } = numericUser(s.user);
    sc.runAsUser = uid;
    if (gid !== undefined) sc.runAsGroup = gid;
    if (uid !== 0) sc.runAsNonRoot = true;
  }
  if (s.privileged) return { ...sc, privileged: true };
  if (s.profile === "restricted") {
    sc.runAsNonRoot = true;
    sc.seccompProfile = { type: "RuntimeDefault" };
  }
  if (s.noNewPrivileges) sc.allowPrivilegeEscalation = false;
  if (s.capAdd.length > 0 || s.capDrop.length > 0) {
    sc.capabilities = {
      ...(s.capAdd.length > 0 ? { add: [...s.capAdd] } : {}),
      ...(s.capDrop.length > 0 ? { drop: [...s.capDrop] } : {}),
    };
  }
  return sc;
}

/** The target's volume mounts an ephemeral container may take (no subPath), and the rest. */
export function usableMounts(
  target: k8s.V1Container,
): { mounts: k8s.V1VolumeMount[]; skipped: string[] } {
  const mounts: k8s.V1VolumeMount[] = [];
  const skipped: string[] = [];
  for (const m of target.volumeMounts ?? []) {
    if (m.subPath || m.subPathExpr) skipped.push(m.mountPath);
    // Bidirectional propagation is for privileged containers only: the default serves here.
    else {
      const { mountPropagation: _, ...rest } = m;
      mounts.push(rest);
    }
  }
  return { mounts, skipped };
}

/**
 * The ephemeral container for the plan, targeting container `target`. `targetId` is the
 * target's container id where only the pod's start tells it (a copy's keeper).
 */
export function ephemeralContainer(
  plan: DebugPlan,
  target: k8s.V1Container,
  targetId?: string,
): { container: k8s.V1EphemeralContainer; skippedMounts: string[] } {
  const env = plan.sidecar.env.map((kv) => {
    const eq = kv.indexOf("=");
    const name = kv.slice(0, eq);
    const value = name === "DBG_TARGET_ID" && targetId ? targetId : kv.slice(eq + 1);
    return { name, value: literal(value) };
  });
  env.push({ name: "DBG_GO", value: String(GO_TIMEOUT_S) });
  env.push({ name: SESSION_ENV, value: plan.runId });
  const { mounts, skipped } = usableMounts(target);
  const container: k8s.V1EphemeralContainer = {
    name: plan.sidecar.name,
    image: plan.image.ref,
    imagePullPolicy: PULL_POLICY[plan.pull],
    command: plan.sidecar.argv.map(literal),
    env,
    targetContainerName: target.name,
    // stdin always: the entry script waits for dbg's go line on it. Without a TTY, stdinOnce
    // lets the end of dbg's input reach the command as EOF.
    stdin: true,
    stdinOnce: !plan.sidecar.tty,
    tty: plan.sidecar.tty,
    terminationMessagePolicy: "File",
    securityContext: securityContext(plan),
    ...(mounts.length > 0 ? { volumeMounts: mounts } : {}),
  };
  return { container, skippedMounts: skipped };
}

/** One dbg container of a pod, for `--sessions`. */
export interface SessionRow {
  name: string;
  target: string;
  image: string;
  state: string;
  since: string;
}

/** dbg's ephemeral containers in the pod (name `dbg-…`), running or not. */
export function sessionRows(pod: k8s.V1Pod): SessionRow[] {
  const statuses = pod.status?.ephemeralContainerStatuses ?? [];
  return (pod.spec?.ephemeralContainers ?? []).filter((c) => c.name.startsWith("dbg-")).map(
    (c) => {
      const st = statuses.find((s) => s.name === c.name)?.state;
      const state = st?.running
        ? "running"
        : st?.terminated
        ? `exited (${st.terminated.exitCode})`
        : st?.waiting
        ? `waiting (${st.waiting.reason ?? "?"})`
        : "pending";
      const since = st?.running?.startedAt ?? st?.terminated?.finishedAt ?? "";
      return {
        name: c.name,
        target: c.targetContainerName ?? "",
        image: c.image ?? "",
        state,
        since: since ? new Date(since).toISOString() : "",
      };
    },
  );
}

/** `--sessions` output: a table, or a line saying there is none. */
export function sessionsTable(pod: string, rows: SessionRow[]): string {
  if (rows.length === 0) return `No dbg containers in pod ${pod}`;
  const all = [["NAME", "TARGET", "STATE", "SINCE", "IMAGE"]].concat(
    rows.map((r) => [r.name, r.target, r.state, r.since, r.image]),
  );
  const w = all[0].map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all.map((r) => r.map((c, i) => i < 4 ? c.padEnd(w[i]) : c).join("  ")).join("\n");
}

/** `--sessions`: dbg's copies and node pods in a namespace (labelled `dbg.session`). */
export function helperPodsTable(pods: k8s.V1Pod[]): string {
  if (pods.length === 0) return "No copies or node pods of dbg's in this namespace";
  const all = [["POD", "OF", "PHASE", "SINCE"]].concat(pods.map((p) => {
    const l = p.metadata?.labels ?? {};
    const of = l["dbg.copy-of"] ? `copy of ${l["dbg.copy-of"]}` : `node ${l["dbg.node"] ?? "?"}`;
    const since = p.metadata?.creationTimestamp;
    return [
      p.metadata?.name ?? "",
      of,
      p.status?.phase ?? "",
      since ? new Date(since).toISOString() : "",
    ];
  }));
  const w = all[0].map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all.map((r) => r.map((c, i) => i < 3 ? c.padEnd(w[i]) : c).join("  ")).join("\n") +
    "\nThey are deleted when their session ends; dbg gc k8s deletes those left behind.";
}
