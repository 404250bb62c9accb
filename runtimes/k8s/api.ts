/**
 * The Kubernetes API as dbg uses it: the kubeconfig (kubeconfig.ts), REST over HTTP/1.1
 * (rest.ts), credentials (static ones here; an exec plugin or auth provider through
 * `@kubernetes/client-node`, loaded only then: auth_plugin.ts), the WebSocket target for attach
 * and exec, and one translation of API failures into one-line errors with a fix.
 *
 * @module
 */

import type * as k8s from "@kubernetes/client-node";
import { DbgError } from "../../lib/errors.ts";
import { unreachableNode } from "./channel.ts";
import { type KubeSettings, loadKubeconfig } from "./kubeconfig.ts";
import { ApiError, AppsV1, type Auth, CoreV1, Rest } from "./rest.ts";
import { prepare } from "./dial.ts";
import type { SocketTarget } from "./websocket.ts";

/** Options for {@link Kube.load}. */
export interface KubeOptions {
  /** `--kubeconfig` (one file, as in kubectl). */
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
  readonly core: CoreV1;
  readonly apps: AppsV1;
  readonly server: string;
  readonly context: string;
  readonly namespace: string;
  readonly #rest: Rest;

  private constructor(s: KubeSettings, auth: () => Promise<Auth>) {
    this.server = s.cluster.server ?? "";
    this.context = s.context;
    this.namespace = s.namespace;
    this.#rest = new Rest(this.server, auth);
    this.core = new CoreV1(this.#rest);
    this.apps = new AppsV1(this.#rest);
  }

  /**
   * Load the configuration like kubectl (kubeconfig.ts). A user with an exec plugin or an auth
   * provider gets its credentials from `@kubernetes/client-node`, loaded for that alone.
   */
  static async load(opts: KubeOptions): Promise<Kube> {
    const s = loadKubeconfig(opts);
    opts.debug(`kubeconfig: ${s.files.join(":") || "in-cluster service account"}`);
    const c = s.cluster;
    const u = s.user;
    const unsupported = [
      c["insecure-skip-tls-verify"] && "insecure-skip-tls-verify",
      c["tls-server-name"] && (u["client-certificate"] || u["client-certificate-data"]) &&
      "tls-server-name with a client certificate",
      c["proxy-url"] && "proxy-url",
    ].filter(Boolean);
    if (unsupported.length > 0) {
      throw new DbgError(
        `The kubeconfig's cluster ${s.clusterName} has ${unsupported.join(", ")}, which dbg ` +
          "does not support",
        { hint: "Use a context whose cluster has a CA and a direct address" },
      );
    }
    if (c["certificate-authority"] || c["certificate-authority-data"]) trustOnlyGivenCas();
    opts.debug(`context ${s.context}, server ${c.server}`);
    if (u.exec || u["auth-provider"]) {
      const { pluginAuth } = await import("./auth_plugin.ts");
      return new Kube(s, pluginAuth(s));
    }
    const auth = staticAuth(s);
    return new Kube(s, () => Promise.resolve(auth));
  }

  /** Run one API call, translating its failure (see {@link apiError}). */
  async call<T>(ctx: CallContext, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw apiError(e, ctx, this.server);
    }
  }

  /** The API server's error when it cannot reach the pod's kubelet (for a log), if it says so. */
  async kubeletUnreachable(
    namespace: string,
    pod: string,
    container: string,
  ): Promise<string | undefined> {
    try {
      await this.core.readNamespacedPodLog({ name: pod, namespace, container, limitBytes: 1 });
    } catch (e) {
      const message = apiMessage(e);
      if (unreachableNode(message)) return message;
    }
    return undefined;
  }

  /** Open `n` connections to the API server ahead of the requests (streams) that will want them. */
  async prepareConnections(n: number): Promise<void> {
    prepare(new URL(this.server), (await this.#rest.auth()).tls, n);
  }

  /** The WebSocket target for a pod subresource such as `attach` or `exec`. */
  async socket(
    namespace: string,
    pod: string,
    sub: string,
    query: URLSearchParams,
  ): Promise<SocketTarget> {
    const { headers, tls } = await this.#rest.auth();
    const base = this.server.replace(/^http/, "ws").replace(/\/$/, "");
    const path = `/api/v1/namespaces/${enc(namespace)}/pods/${enc(pod)}/${sub}`;
    return { url: `${base}${path}?${query}`, headers: { ...headers }, tls };
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

  #watch(
    path: string,
    fieldSelector: string,
    resourceVersion: string | undefined,
    onObject: (type: string, obj: unknown) => void,
    onEnd: (err: unknown) => void,
  ): Promise<() => void> {
    const query = { fieldSelector, resourceVersion, allowWatchBookmarks: false };
    return this.#rest.watch(path, query, onObject, onEnd);
  }
}

/**
 * The credentials a kubeconfig user writes down: a token (or token file), basic auth, a client
 * certificate, impersonation; and the cluster's CA. (Files are read once, at the start.)
 */
function staticAuth(s: KubeSettings): Auth {
  const { cluster: c, user: u } = s;
  const pem = (data?: string, file?: string) =>
    data ? atob(data) : file ? Deno.readTextFileSync(file) : undefined;
  const read = (what: string, f: () => string | undefined) => {
    try {
      return f();
    } catch (e) {
      throw new DbgError(`Cannot read the kubeconfig's ${what}: ${(e as Error).message}`, {
        hint: `Check the ${what} of context ${s.context} (kubectl config view)`,
        cause: e,
      });
    }
  };
  const ca = read(
    "certificate-authority",
    () => pem(c["certificate-authority-data"], c["certificate-authority"]),
  );
  const cert = read(
    "client-certificate",
    () => pem(u["client-certificate-data"], u["client-certificate"]),
  );
  const key = read("client-key", () => pem(u["client-key-data"], u["client-key"]));
  const token = u.token ??
    read("tokenFile", () => u.tokenFile ? Deno.readTextFileSync(u.tokenFile).trim() : undefined);
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  else if (u.username && u.password) {
    headers.Authorization = `Basic ${btoa(`${u.username}:${u.password}`)}`;
  }
  if (u.as) headers["Impersonate-User"] = u.as;
  if (u["as-uid"]) headers["Impersonate-Uid"] = u["as-uid"];
  const groups = u["as-groups"] ?? [];
  if (groups.length > 1) {
    // (Requests carry one header of a name: rest.ts sends a record.)
    throw new DbgError(`dbg cannot impersonate more than one group (as-groups of ${s.context})`, {
      hint: "Impersonate one group, or none",
    });
  }
  if (groups.length) headers["Impersonate-Group"] = groups[0];
  return { headers, tls: { ca, cert, key, serverName: c["tls-server-name"] } };
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

/** The `Status` body of a failed call, when there is one. */
interface ApiStatus {
  code?: number;
  reason?: string;
  message?: string;
  details?: { name?: string; kind?: string };
}

function statusOf(e: unknown): { code: number; status: ApiStatus } | undefined {
  if (!(e instanceof ApiError)) return undefined;
  let status: ApiStatus;
  try {
    status = JSON.parse(e.body);
  } catch {
    status = { message: e.body };
  }
  return { code: e.code, status: status && typeof status === "object" ? status : {} };
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
      !/os error|lookup address|ECONN|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|socket|connect|TLS|certificate/i
        .test(detail)
    ) {
      return new DbgError(`The Kubernetes request for ${ctx.resource} failed: ${firstLine(msg)}`, {
        hint: "Check the kubeconfig user's credentials (an exec plugin such as " +
          "gke-gcloud-auth-plugin or aws must run and be logged in)",
        cause: e,
      });
    }
    const cert = /invalid peer certificate: ?(\w+)|unable to verify[\w ]*certificate/i.exec(detail);
    if (cert && /NotValidForName|not valid for name/i.test(detail)) {
      return new DbgError(
        `The Kubernetes API server at ${server} has a certificate for another name`,
        {
          hint: "Check the server address, or tls-server-name, of the current context's cluster",
          cause: e,
        },
      );
    }
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
