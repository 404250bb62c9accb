/**
 * Pods of the private cluster (cluster.ts): the node they run on, and applying one and waiting
 * until it runs (see {@link PrivateCluster.applyPod}).
 *
 * @module
 */

import type { PrivateCluster } from "./cluster.ts";
import type { Api } from "./cluster_api.ts";
import { sleep } from "./util.ts";

/** The node's name (`--hostname-override`); pods run there with `spec.nodeName` set to it. */
export const NODE_NAME = "localhost";

/** Pod status fields the waits look at. */
interface PodStatus {
  phase?: string;
  containerStatuses?: {
    name: string;
    ready: boolean;
    state?: { waiting?: { reason?: string; message?: string } };
  }[];
}

/** Waiting reasons after which a pod does not become ready without a change. */
const HOPELESS = ["ErrImageNeverPull", "InvalidImageName", "CrashLoopBackOff"];

/**
 * {@link PrivateCluster.applyPod} of the cluster whose `kubectl` (admin) and API client `api`
 * are given.
 */
export async function applyPod(
  kubectl: PrivateCluster["kubectl"],
  api: Api,
  pod: Record<string, unknown>,
  namespace?: string,
): Promise<Record<string, unknown>> {
  const p = structuredClone(pod) as {
    apiVersion?: string;
    kind?: string;
    metadata?: { name?: string; namespace?: string };
    spec?: { nodeName?: string; hostNetwork?: boolean };
  };
  const podName = p.metadata?.name;
  if (!podName) throw new Error("applyPod: metadata.name missing");
  const ns = namespace ?? p.metadata?.namespace ?? "default";
  p.apiVersion ??= "v1";
  p.kind ??= "Pod";
  p.metadata = { ...p.metadata, namespace: ns };
  p.spec = { nodeName: NODE_NAME, hostNetwork: true, ...p.spec };
  await kubectl(["apply", "-f", "-"], { stdin: JSON.stringify(p) });
  const path = `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(podName)}`;
  const deadline = Date.now() + 60_000;
  let why = "";
  while (true) {
    const r = await api("GET", path);
    const obj = r.status === 200 ? JSON.parse(r.body) as Record<string, unknown> : null;
    const status = (obj?.status ?? {}) as PodStatus;
    const containers = status.containerStatuses ?? [];
    const ready = containers.length > 0 && containers.every((c) => c.ready);
    if (obj && status.phase === "Running" && ready) return obj;
    const hopeless = containers.find((c) => HOPELESS.includes(c.state?.waiting?.reason ?? ""));
    if (status.phase === "Failed" || status.phase === "Succeeded") why = `phase ${status.phase}`;
    else if (hopeless) why = `container ${hopeless.name}: ${hopeless.state?.waiting?.reason}`;
    else if (Date.now() > deadline) why = `not running and ready within 60s`;
    if (why) break;
    await sleep(200);
  }
  const describe = await kubectl(["describe", "pod", "-n", ns, podName], { check: false });
  throw new Error(`pod ${ns}/${podName}: ${why}\n${describe.stdout}${describe.stderr}`);
}
