/**
 * The Kubernetes API as dbg uses it: kubeconfig loading the way kubectl does it (several files
 * in KUBECONFIG, first one wins), REST through `@kubernetes/client-node`, the WebSocket target
 * for attach and exec, and one translation of API failures into one-line errors with a fix.
 *
 * @module
 */

import * as k8s from "@kubernetes/client-node";
import { DbgError } from "../../lib/errors.ts";
import type { SocketTarget } from "./channel.ts";

/** Where the in-cluster service account lives. */
const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Options for {@link Kube.load}. */
export interface KubeOptions {
  /** `--kubeconfig` (may be ':'-separated like KUBECONFIG). */
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  env: (k: string) => string | undefined;
  debug: (msg: string) => void;
}

/** What one API call was for, to say what failed and what permission it needs. */
export interface CallContext {
  verb: string;
  /** e.g. `pods`, `pods/ephemeralcontainers`, `deployments.apps`. */
  resource: string;
  name?: string;
  namespace?: string;
}

/**
 * Trust the kubeconfig's CA alone, as kubectl does, and not the public CAs as well: Deno adds a
 * client's `caCerts` to its root store, which it builds at the first TLS connection from
 * DENO_TLS_CA_STORE ("," names no store). So the store is emptied before any connection, and
 * the REST calls and the attach WebSocket, which both pass the CA, trust it only.
 */
function trustOnlyGivenCas(): void {
  Deno.env.set("DENO_TLS_CA_STORE", ",");
}

/** A loaded kubeconfig and the API clients dbg needs. */
export class Kube {
  readonly core: k8s.CoreV1Api;
  readonly apps: k8s.AppsV1Api;
  readonly server: string;
  readonly context: string;

  private constructor(readonly kc: k8s.KubeConfig, readonly namespace: string) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.apps = kc.makeApiClient(k8s.AppsV1Api);
    this.server = kc.getCurrentCluster()?.server ?? "";
    this.context = kc.getCurrentContext();
  }

  /**
   * Load the configuration like kubectl: `--kubeconfig` or `KUBECONFIG` (every file, the first
   * one to define a name or the current context wins), else `~/.kube/config`, else the
   * in-cluster service account. `--context` picks a context; the namespace comes from `-n`,
   * else the context, else `default`.
   */
  static load(opts: KubeOptions): Kube {
    const kc = new k8s.KubeConfig();
    // --kubeconfig is one file, as in kubectl; KUBECONFIG is a ':'-separated list.
    const home = opts.env("HOME") ?? "";
    const files = opts.kubeconfig ? [opts.kubeconfig] : (opts.env("KUBECONFIG") ?? "").split(":")
      .filter(Boolean);
    if (files.length === 0 && home) files.push(`${home}/.kube/config`);
    const present = files.filter((f) => exists(f));
    if (opts.kubeconfig && present.length < files.length) {
      throw new DbgError(`Cannot read kubeconfig ${files.find((f) => !exists(f))}`, {
        hint: "Check the --kubeconfig path",
      });
    }
    if (present.length > 0) {
      mergeFiles(kc, present);
      opts.debug(`kubeconfig: ${present.join(":")}`);
    } else if (exists(`${SERVICE_ACCOUNT}/token`)) {
      kc.loadFromCluster();
      opts.debug("kubeconfig: in-cluster service account");
    } else {
      const tried = files.length > 0 ? ` (no ${files.join(", ")})` : "";
      throw new DbgError(`No Kubernetes configuration found${tried}`, {
        hint: "Point KUBECONFIG (or --kubeconfig) at a kubeconfig file, or run dbg in a pod",
      });
    }
    if (opts.context) {
      if (!kc.getContextObject(opts.context)) {
        const names = kc.getContexts().map((c) => c.name).join(", ") || "none";
        throw new DbgError(`No context "${opts.context}" in the kubeconfig (contexts: ${names})`, {
          hint: "Pick one with --context, or list them with: kubectl config get-contexts",
        });
      }
      kc.setCurrentContext(opts.context);
    }
    if (!kc.getCurrentCluster()) {
      throw new DbgError(`The kubeconfig has no current context with a cluster`, {
        hint: "Pass --context NAME, or set one with: kubectl config use-context NAME",
      });
    }
    const cluster = kc.getCurrentCluster();
    if (cluster?.caData || cluster?.caFile) trustOnlyGivenCas();
    const ctx = kc.getContextObject(kc.getCurrentContext());
    const namespace = opts.namespace || ctx?.namespace || "default";
    opts.debug(`context ${kc.getCurrentContext()}, server ${kc.getCurrentCluster()?.server}`);
    return new Kube(kc, namespace);
  }

  /** Run one API call, translating its failure (see {@link apiError}). */
  async call<T>(ctx: CallContext, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw apiError(e, ctx, this.server);
    }
  }

  /** The WebSocket target for a pod subresource such as `attach` or `exec`. */
  async socket(
    namespace: string,
    pod: string,
    sub: string,
    query: URLSearchParams,
  ): Promise<SocketTarget> {
    const cluster = this.kc.getCurrentCluster();
    const unsupported = [
      cluster?.skipTLSVerify && "insecure-skip-tls-verify",
      cluster?.tlsServerName && "tls-server-name",
      cluster?.proxyUrl && "proxy-url",
    ].filter(Boolean);
    if (unsupported.length > 0) {
      throw new DbgError(
        `dbg cannot attach with this kubeconfig's ${unsupported.join(", ")} (cluster ` +
          `${cluster?.name})`,
        { hint: "Use a context whose cluster has a CA and a direct address" },
      );
    }
    const opts: { headers?: Record<string, string>; ca?: unknown; cert?: unknown; key?: unknown } =
      {};
    await this.kc.applyToHTTPSOptions(opts as never);
    const pem = (v: unknown) => v === undefined ? undefined : String(v);
    const ca = pem(opts.ca);
    const cert = pem(opts.cert);
    const key = pem(opts.key);
    const client = ca || (cert && key)
      ? Deno.createHttpClient({
        ...(ca ? { caCerts: [ca] } : {}),
        ...(cert && key ? { cert, key } : {}),
      })
      : undefined;
    const base = this.server.replace(/^http/, "ws").replace(/\/$/, "");
    const path = `/api/v1/namespaces/${enc(namespace)}/pods/${enc(pod)}/${sub}`;
    const headers = { ...(opts.headers ?? {}) };
    const user = this.kc.getCurrentUser();
    if (!headers.Authorization && user?.username && user?.password) {
      headers.Authorization = `Basic ${btoa(`${user.username}:${user.password}`)}`;
    }
    return { url: `${base}${path}?${query}`, headers, client };
  }

  /**
   * Follow one pod with a watch (`fieldSelector=metadata.name=…`), calling `onPod` for every
   * version of it; returns a function that stops the watch.
   */
  watchPod(
    namespace: string,
    name: string,
    resourceVersion: string | undefined,
    onPod: (type: string, pod: k8s.V1Pod) => void,
    onEnd: (err: unknown) => void,
  ): Promise<() => void> {
    return this.#watch(
      `/api/v1/namespaces/${enc(namespace)}/pods`,
      `metadata.name=${name}`,
      resourceVersion,
      (type, obj) => onPod(type, obj as k8s.V1Pod),
      onEnd,
    );
  }

  /**
   * Follow the events of one pod (the kubelet's pull failures come here at once, and into the
   * pod's status only at its next sync of the pod, seconds later).
   */
  watchPodEvents(
    namespace: string,
    pod: string,
    resourceVersion: string | undefined,
    onEvent: (event: k8s.CoreV1Event) => void,
    onEnd: (err: unknown) => void,
  ): Promise<() => void> {
    return this.#watch(
      `/api/v1/namespaces/${enc(namespace)}/events`,
      `involvedObject.kind=Pod,involvedObject.name=${pod}`,
      resourceVersion,
      (type, obj) => type !== "DELETED" && onEvent(obj as k8s.CoreV1Event),
      onEnd,
    );
  }

  async #watch(
    path: string,
    fieldSelector: string,
    resourceVersion: string | undefined,
    onObject: (type: string, obj: unknown) => void,
    onEnd: (err: unknown) => void,
  ): Promise<() => void> {
    const w = new k8s.Watch(this.kc);
    const ctl = await w.watch(
      path,
      { fieldSelector, resourceVersion, allowWatchBookmarks: false },
      onObject,
      onEnd,
    );
    return () => ctl.abort();
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** kubectl's merge: every file, in order; the first definition of a name wins. */
function mergeFiles(kc: k8s.KubeConfig, files: string[]): void {
  const clusters = new Map<string, k8s.Cluster>();
  const users = new Map<string, k8s.User>();
  const contexts = new Map<string, k8s.Context>();
  let current = "";
  for (const file of files) {
    const one = new k8s.KubeConfig();
    if (Deno.statSync(file).size === 0) continue; // kubectl takes an empty file as empty
    try {
      one.loadFromFile(file);
    } catch (e) {
      throw new DbgError(`Cannot read kubeconfig ${file}: ${(e as Error).message}`, {
        hint: "Fix the file, or leave it out of KUBECONFIG",
        cause: e,
      });
    }
    for (const c of one.getClusters()) if (!clusters.has(c.name)) clusters.set(c.name, c);
    for (const u of one.getUsers()) if (!users.has(u.name)) users.set(u.name, u);
    for (const c of one.getContexts()) if (!contexts.has(c.name)) contexts.set(c.name, c);
    current ||= one.getCurrentContext() ?? "";
  }
  kc.loadFromOptions({
    clusters: [...clusters.values()],
    users: [...users.values()],
    contexts: [...contexts.values()],
    currentContext: current,
  });
}

/** The `Status` body of a failed call, when there is one. */
interface ApiStatus {
  code?: number;
  reason?: string;
  message?: string;
  details?: { name?: string; kind?: string };
}

function statusOf(e: unknown): { code: number; status: ApiStatus } | undefined {
  if (!(e instanceof k8s.ApiException)) return undefined;
  let status: ApiStatus = {};
  const body = (e as k8s.ApiException<unknown>).body;
  if (typeof body === "string") {
    try {
      status = JSON.parse(body);
    } catch {
      status = { message: body };
    }
  } else if (body && typeof body === "object") status = body as ApiStatus;
  return { code: e.code, status };
}

/** The message of a failed API call: the `Status` message when there is one. */
export function apiMessage(e: unknown): string {
  return statusOf(e)?.status.message ?? (e instanceof Error ? e.message : String(e));
}

/**
 * One line for a failed API call, with the fix: 401 (credentials), 403 (RBAC, naming the verb
 * and resource; or Pod Security, suggesting `--profile restricted`), 404 (no such object; for
 * `pods/ephemeralcontainers`, the cluster lacks ephemeral containers), and an unreachable
 * server.
 */
export function apiError(e: unknown, ctx: CallContext, server: string): DbgError {
  if (e instanceof DbgError) return e;
  const st = statusOf(e);
  const where = ctx.namespace ? ` in namespace ${ctx.namespace}` : "";
  if (!st) {
    const msg = e instanceof Error ? e.message : String(e);
    const detail = `${msg} ${(e as { cause?: unknown })?.cause ?? ""}`;
    if (
      !/fetch failed|ECONN|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|socket|connect|TLS|certificate/i
        .test(detail)
    ) {
      return new DbgError(`The Kubernetes request for ${ctx.resource} failed: ${firstLine(msg)}`, {
        hint: "Check the kubeconfig user's credentials (an exec plugin such as " +
          "gke-gcloud-auth-plugin or aws must run and be logged in)",
        cause: e,
      });
    }
    const cert = /invalid peer certificate: ?(\w+)|unable to verify[\w ]*certificate/i.exec(detail);
    if (cert) {
      return new DbgError(
        `The Kubernetes API server at ${server} has a certificate the kubeconfig's CA does not ` +
          `sign (${cert[1] ?? firstLine(cert[0])})`,
        {
          hint: "Check certificate-authority(-data) of the current context's cluster; dbg trusts " +
            "that CA alone, as kubectl does",
          cause: e,
        },
      );
    }
    return new DbgError(`Cannot reach the Kubernetes API server at ${server}: ${firstLine(msg)}`, {
      hint: "Check the cluster address and your network (kubectl cluster-info), or pick " +
        "another --context",
      cause: e,
    });
  }
  const { code, status } = st;
  const message = status.message ?? `HTTP ${code}`;
  if (code === 401) {
    return new DbgError(`The API server refused the credentials (401 Unauthorized)`, {
      hint: "Log in again, or check the user of the current context (kubectl config view)",
      cause: e,
    });
  }
  if (code === 403 && /PodSecurity/.test(message)) {
    return new DbgError(`Pod Security admission rejected the debug container: ${message}`, {
      hint: "Use a profile the namespace allows: --profile restricted (or --profile baseline)",
      cause: e,
    });
  }
  if (code === 403 && !/ cannot \S+ resource /.test(message)) {
    return new DbgError(`The API server refused to ${ctx.verb} ${ctx.resource}: ${message}`, {
      hint: "An admission policy of the cluster refused it; ask its owners what it allows",
      cause: e,
    });
  }
  if (code === 403) {
    const res = ctx.resource;
    return new DbgError(
      `Forbidden: you may not ${ctx.verb} ${res}${ctx.name ? ` ${ctx.name}` : ""}${where}`,
      { hint: `Ask for "${ctx.verb}" on "${res}" (check: ${canI(ctx)})`, cause: e },
    );
  }
  if (code === 404 && ctx.resource === "pods/ephemeralcontainers" && !status.details?.name) {
    return new DbgError("This cluster does not support ephemeral containers", {
      hint: "Ephemeral containers need Kubernetes 1.23 or later (on by default); " +
        "below Kubernetes, use dbg containerd on the node",
      cause: e,
    });
  }
  if (code === 404) {
    const kind = ctx.resource.split("/")[0].replace(/s(\..*)?$/, "");
    return new DbgError(`No such ${kind}: ${ctx.name ?? ""}${where}`, {
      hint: `List them with: kubectl get ${ctx.resource.split("/")[0]}` +
        (ctx.namespace ? ` -n ${ctx.namespace}` : ""),
      cause: e,
    });
  }
  if (code === 422) {
    return new DbgError(`The API server rejected the debug container: ${message}`, {
      hint: "Check the flags (image, user, env) against what the pod allows",
      cause: e,
    });
  }
  return new DbgError(`Kubernetes API error ${code} on ${ctx.verb} ${ctx.resource}: ${message}`, {
    hint: "Run again with --debug for details",
    cause: e,
  });
}

/** The kubectl command that checks a permission (`pods/x` is `pods --subresource x`). */
export function canI(ctx: Pick<CallContext, "verb" | "resource" | "namespace">): string {
  const [res, sub] = ctx.resource.split("/");
  return `kubectl auth can-i ${ctx.verb} ${res}${sub ? ` --subresource ${sub}` : ""}` +
    (ctx.namespace ? ` -n ${ctx.namespace}` : "");
}

function firstLine(s: string): string {
  return s.split("\n")[0];
}
