/**
 * Waiting for a container of a pod to run: dbg's ephemeral container, or the keeper of a copy or
 * node pod. A watch from the PATCH's (or the create's) resource version sees every change; a
 * poll covers a watch that fails; events name a failure (a pull, say) before the status does.
 * Waiting reasons worth a line are said once; those no waiting fixes end the wait at once.
 *
 * @module
 */

import type * as k8s from "@kubernetes/client-node";
import { DbgError } from "../../lib/errors.ts";
import { delay } from "../../lib/signals.ts";
import type { Kube } from "./api.ts";

/** Waiting reasons that are the normal way to start, not worth a line. */
const ROUTINE = ["ContainerCreating", "PodInitializing"];

/** Waiting reasons that no amount of waiting fixes. */
const PERMANENT = ["ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError"];

/** What to wait for, and where to say what happens. */
export interface WaitOptions {
  namespace: string;
  pod: string;
  /** The container's name. */
  name: string;
  /** An ephemeral container (else a regular one, after the pod's init containers). */
  ephemeral: boolean;
  /** Watch from this resource version (the PATCH's or the create's). */
  rv?: string;
  timeoutMs: number;
  stop?: AbortSignal;
  debug: (msg: string) => void;
  notice: (msg: string) => void;
}

/** The state of container `name` in a pod's status. */
export function containerState(
  pod: k8s.V1Pod,
  name: string,
  ephemeral: boolean,
): k8s.V1ContainerState | undefined {
  const statuses = ephemeral
    ? pod.status?.ephemeralContainerStatuses
    : pod.status?.containerStatuses;
  return (statuses ?? []).find((s) => s.name === name)?.state;
}

/**
 * Watch the pod until the container runs or has ended; say why it waits; fail on a reason no
 * waiting fixes, on a failed init container, or on timeout.
 */
export async function waitForContainer(
  kube: Kube,
  o: WaitOptions,
): Promise<k8s.V1ContainerState> {
  const { namespace, pod, name, timeoutMs, stop } = o;
  const done = Promise.withResolvers<k8s.V1ContainerState>();
  const onStop = () => done.reject(new Error("stopped while waiting for the container"));
  if (stop?.aborted) onStop();
  stop?.addEventListener("abort", onStop);
  let last = "";
  let reported = false;
  let node = "";
  const waiting = (who: string, w: k8s.V1ContainerStateWaiting | undefined) => {
    const why = w?.reason ? `${w.reason}${w.message ? `: ${w.message}` : ""}` : "";
    if (!why || why === last || ROUTINE.includes(w?.reason ?? "")) return;
    last = why;
    if (PERMANENT.includes(w?.reason ?? "")) {
      done.reject(new DbgError(`${who} cannot start: ${why}`, { hint: hintFor(w?.reason) }));
    } else o.notice(`dbg: ${who} is waiting: ${why}`);
  };
  const seen = (p: k8s.V1Pod, via: string) => {
    const st = containerState(p, name, o.ephemeral);
    reported ||= !!st;
    node = p.spec?.nodeName ?? node;
    o.debug(`${via}: ${name} ${st ? Object.keys(st).join(",") : "no status yet"}`);
    if (st?.running || st?.terminated) return done.resolve(st);
    if (!o.ephemeral) {
      for (const init of p.status?.initContainerStatuses ?? []) {
        const t = init.state?.terminated;
        if (t && t.exitCode !== 0) {
          const why = [t.reason, t.message].filter(Boolean).join(": ");
          done.reject(
            new DbgError(`Init container ${init.name} of pod ${pod} failed: ${why || t.exitCode}`, {
              hint: `See why: kubectl -n ${namespace} logs ${pod} -c ${init.name}`,
            }),
          );
        }
        waiting(`init container ${init.name}`, init.state?.waiting);
      }
      if (p.status?.phase === "Failed") {
        done.reject(new DbgError(`Pod ${pod} failed: ${p.status.message ?? p.status.reason}`));
      }
    }
    waiting(name, st?.waiting);
  };
  let open = true;
  let unwatch = () => {};
  kube.watchPod(namespace, pod, o.rv, (type, p) => {
    if (type === "DELETED") {
      done.reject(new DbgError(`Pod ${pod} was deleted`, { hint: "Debug another pod" }));
    } else seen(p, `watch ${type}`);
  }, (err) => o.debug(`watch ended${err ? `: ${errText(err)}` : ""}`)).then(
    (u) => open ? (unwatch = u) : u(),
    (e) => o.debug(`watch failed (${errText(e)}): polling`),
  );
  // Reading events takes a permission some users lack: then the status alone tells.
  let stopEvents = () => {};
  const field = `spec.ephemeralContainers{${name}}`;
  kube.watchPodEvents(namespace, pod, o.rv, (ev) => {
    if (ev.type !== "Warning" || (o.ephemeral && ev.involvedObject?.fieldPath !== field)) return;
    const why = ev.message ?? ev.reason ?? "";
    if (!why || why === last || why.startsWith("Error: ")) return;
    last = why;
    o.notice(`dbg: ${o.ephemeral ? name : `pod ${pod}`}: ${why}`);
  }, () => {}).then(
    (s) => open ? (stopEvents = s) : s(),
    (e) => o.debug(`events: ${errText(e)}`),
  );
  const poll = (async () => {
    let failures = 0; // a blip (429, 503) is no reason to give up while the watch is fine
    while (open) {
      try {
        const p = await kube.call(
          { verb: "get", resource: "pods", name: pod, namespace },
          () => kube.core.readNamespacedPod({ name: pod, namespace }),
        );
        failures = 0;
        seen(p, "poll");
      } catch (e) {
        if (++failures >= 3) throw e;
      }
      await delay(1000);
    }
  })();
  poll.catch((e) => done.reject(e));
  const timer = setTimeout(() => {
    const s = Math.round(timeoutMs / 1000);
    // No status at all: the node's kubelet has not taken the container up.
    const silent = !reported && node;
    done.reject(
      new DbgError(
        `${name} did not start within ${s}s` +
          (last
            ? ` (last: ${last})`
            : silent
            ? ` (the kubelet of node ${node} has not reported it)`
            : ""),
        {
          hint: hintFor(reasonIn(last)) ??
            (silent
              ? `Check that the node is Ready and its kubelet runs (kubectl get node ${node}), ` +
                "or give it longer with --timeout"
              : "Give it longer with --timeout"),
        },
      ),
    );
  }, timeoutMs);
  try {
    return await done.promise;
  } finally {
    open = false;
    unwatch();
    stopEvents();
    clearTimeout(timer);
    stop?.removeEventListener("abort", onStop);
  }
}

/** An error's message. */
export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
/** The waiting reason a status or event text names. */
function reasonIn(text: string): string | undefined {
  if (/ErrImagePull|ImagePullBackOff|Failed to pull image/.test(text)) return "ErrImagePull";
  return text.split(":")[0] || undefined;
}

function hintFor(reason: string | undefined): string | undefined {
  switch (reason) {
    case "ErrImagePull":
    case "ImagePullBackOff":
      return "Check the --image name and that the node can pull it (registry, credentials)";
    case "ErrImageNeverPull":
      return "The image is not on the node and --pull never forbids pulling: drop --pull never";
    case "InvalidImageName":
      return "Check the --image reference";
    case "CreateContainerConfigError":
      return "The pod's security settings refuse the container: try --profile restricted";
  }
  return undefined;
}

/** A container's state, read every 250 ms until `enough` says so or `ms` have passed. */
export async function stateWithin(
  kube: Kube,
  c: { namespace: string; pod: string; name: string; ephemeral: boolean },
  ms: number,
  enough: (st: k8s.V1ContainerState | undefined) => boolean,
): Promise<k8s.V1ContainerState | undefined> {
  const end = Date.now() + ms;
  let st: k8s.V1ContainerState | undefined;
  while (Date.now() < end) {
    const pod = await kube.core.readNamespacedPod({ name: c.pod, namespace: c.namespace });
    st = containerState(pod, c.name, c.ephemeral);
    if (enough(st)) break;
    await delay(250);
  }
  return st;
}
