/**
 * What dbg made in a Kubernetes namespace, for `dbg gc k8s`: its copies of pods and its node
 * pods (labelled `dbg.session`). A pod is held while one of dbg's ephemeral containers runs in
 * it (the lifeline ends that container once its dbg is gone, lib/kill.ts), and its state is
 * `ended` once they all have.
 * Ephemeral containers themselves are not listed: no API removes them.
 *
 * @module
 */

import type * as k8s from "@kubernetes/client-node";
import type { SessionPart } from "../../lib/adapter.ts";
import { DbgError } from "../../lib/errors.ts";
import type { Kube } from "./api.ts";

/** dbg's pods in the namespace. */
export async function k8sParts(kube: Kube): Promise<SessionPart[]> {
  const namespace = kube.namespace;
  const list = await kube.call(
    { verb: "list", resource: "pods", namespace },
    () => kube.core.listNamespacedPod({ namespace, labelSelector: "dbg.session" }),
  );
  return list.items.map((p: k8s.V1Pod): SessionPart => {
    const labels = p.metadata?.labels ?? {};
    const name = p.metadata?.name ?? "";
    const dbgs = (p.status?.ephemeralContainerStatuses ?? []).filter((s) =>
      s.name.startsWith("dbg-")
    );
    // Its session is over once each of dbg's containers in it has ended.
    const over = dbgs.length > 0 && dbgs.every((s) => !!s.state?.terminated);
    const state = over ? "ended" : (p.status?.phase ?? "unknown").toLowerCase();
    return {
      session: labels["dbg.session"],
      kind: "pod",
      name,
      ref: name,
      target: labels["dbg.copy-of"] ?? `node/${labels["dbg.node"] ?? "?"}`,
      created: p.metadata?.creationTimestamp ? new Date(p.metadata.creationTimestamp).getTime() : 0,
      state,
      attached: dbgs.some((s) => !!s.state?.running),
    };
  });
}

/** Delete dbg's pods at once (they hold nothing that needs a grace period). */
export async function removeK8sParts(kube: Kube, parts: SessionPart[]): Promise<void> {
  const namespace = kube.namespace;
  await Promise.all(parts.map((p) =>
    kube.call(
      { verb: "delete", resource: "pods", name: p.ref, namespace },
      () => kube.core.deleteNamespacedPod({ name: p.ref, namespace, gracePeriodSeconds: 0 }),
    ).catch((e) => {
      if (!(e instanceof DbgError && e.message.startsWith("No such pod"))) throw e;
    })
  ));
}
