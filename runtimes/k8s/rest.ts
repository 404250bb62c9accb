/**
 * The few Kubernetes API calls dbg makes, as plain HTTPS requests with `fetch`: the same
 * method names and arguments as `@kubernetes/client-node`'s CoreV1Api and AppsV1Api, whose
 * loading costs more than all of dbg's own start-up. Objects come back as the API server sends
 * them (timestamps stay strings). A failed call throws {@link ApiError}.
 *
 * @module
 */

import type * as k8s from "@kubernetes/client-node";
import type { TlsPems } from "./websocket.ts";

/**
 * What every request carries: headers (credentials) and the TLS client (CA, client cert) made
 * from the PEMs, which the WebSocket (websocket.ts) takes as they are.
 */
export interface Auth {
  headers: Record<string, string>;
  client?: Deno.HttpClient;
  tls: TlsPems;
}

/** The TLS client for a CA and a client certificate, where either is given. */
export function tlsClient(ca?: string, cert?: string, key?: string): Deno.HttpClient | undefined {
  if (!ca && !(cert && key)) return undefined;
  return Deno.createHttpClient({
    ...(ca ? { caCerts: [ca] } : {}),
    ...(cert && key ? { cert, key } : {}),
  });
}

/** An API server's answer other than 2xx: its status code and body (a `Status`, mostly). */
export class ApiError extends Error {
  constructor(readonly code: number, readonly body: string) {
    super(`HTTP ${code}: ${body.slice(0, 200)}`);
    this.name = "ApiError";
  }
}

type Query = Record<string, string | number | boolean | undefined>;

/** A request's query, JSON body and its content type. */
interface CallOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
}

/** Requests to one API server. */
export class Rest {
  constructor(readonly server: string, readonly auth: () => Promise<Auth>) {}

  async #fetch(
    method: string,
    path: string,
    o: CallOptions & { signal?: AbortSignal } = {},
  ): Promise<Response> {
    const { headers, client } = await this.auth();
    const url = new URL(this.server.replace(/\/$/, "") + path);
    for (const [k, v] of Object.entries(o.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const res = await fetch(url, {
      method,
      client,
      signal: o.signal,
      headers: {
        Accept: "application/json",
        ...headers,
        ...(o.body === undefined ? {} : { "Content-Type": o.contentType ?? "application/json" }),
      },
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
    });
    if (!res.ok) throw new ApiError(res.status, await res.text());
    return res;
  }

  /** One call; the answer as JSON. */
  async json<T>(method: string, path: string, o: CallOptions = {}): Promise<T> {
    return await (await this.#fetch(method, path, o)).json() as T;
  }

  /** One call; the answer as text (logs). */
  async text(method: string, path: string, o: CallOptions = {}): Promise<string> {
    return await (await this.#fetch(method, path, o)).text();
  }

  /**
   * A watch of `path` (`?watch=true`): calls `onObject` for every event and `onEnd` once the
   * stream ends, with its error if it failed. Returns a function that stops it.
   */
  async watch(
    path: string,
    query: Query,
    onObject: (type: string, obj: unknown) => void,
    onEnd: (err: unknown) => void,
  ): Promise<() => void> {
    const stop = new AbortController();
    const res = await this.#fetch("GET", path, {
      query: { ...query, watch: true },
      signal: stop.signal,
    });
    (async () => {
      let rest = "";
      for await (const text of res.body!.pipeThrough(new TextDecoderStream())) {
        rest += text;
        let nl;
        while ((nl = rest.indexOf("\n")) >= 0) {
          const line = rest.slice(0, nl).trim();
          rest = rest.slice(nl + 1);
          if (!line) continue;
          const ev = JSON.parse(line) as { type: string; object: unknown };
          onObject(ev.type, ev.object);
        }
      }
    })().then(() => onEnd(null), (e) => onEnd(stop.signal.aborted ? null : e));
    return () => stop.abort();
  }
}

const e = encodeURIComponent;
const pods = (ns: string) => `/api/v1/namespaces/${e(ns)}/pods`;

/** The CoreV1Api calls dbg makes. */
export class CoreV1 {
  constructor(private rest: Rest) {}

  readNamespacedPod(a: { name: string; namespace: string }): Promise<k8s.V1Pod> {
    return this.rest.json("GET", `${pods(a.namespace)}/${e(a.name)}`);
  }

  listNamespacedPod(a: { namespace: string; labelSelector?: string }): Promise<k8s.V1PodList> {
    return this.rest.json("GET", pods(a.namespace), { query: { labelSelector: a.labelSelector } });
  }

  createNamespacedPod(a: { namespace: string; body: k8s.V1Pod }): Promise<k8s.V1Pod> {
    return this.rest.json("POST", pods(a.namespace), { body: a.body });
  }

  deleteNamespacedPod(
    a: { name: string; namespace: string; gracePeriodSeconds?: number },
  ): Promise<k8s.V1Pod> {
    return this.rest.json("DELETE", `${pods(a.namespace)}/${e(a.name)}`, {
      query: { gracePeriodSeconds: a.gracePeriodSeconds },
    });
  }

  /** A strategic-merge patch of the pod's ephemeral containers. */
  patchNamespacedPodEphemeralcontainers(
    a: { name: string; namespace: string; body: unknown },
  ): Promise<k8s.V1Pod> {
    return this.rest.json("PATCH", `${pods(a.namespace)}/${e(a.name)}/ephemeralcontainers`, {
      body: a.body,
      contentType: "application/strategic-merge-patch+json",
    });
  }

  readNamespacedPodLog(
    a: { name: string; namespace: string; container?: string; limitBytes?: number },
  ): Promise<string> {
    return this.rest.text("GET", `${pods(a.namespace)}/${e(a.name)}/log`, {
      query: { container: a.container, limitBytes: a.limitBytes },
    });
  }

  readNamespace(a: { name: string }): Promise<k8s.V1Namespace> {
    return this.rest.json("GET", `/api/v1/namespaces/${e(a.name)}`);
  }

  readNode(a: { name: string }): Promise<k8s.V1Node> {
    return this.rest.json("GET", `/api/v1/nodes/${e(a.name)}`);
  }
}

/** The AppsV1Api calls dbg makes. */
export class AppsV1 {
  constructor(private rest: Rest) {}

  readNamespacedDeployment(a: { name: string; namespace: string }): Promise<k8s.V1Deployment> {
    return this.rest.json(
      "GET",
      `/apis/apps/v1/namespaces/${e(a.namespace)}/deployments/${e(a.name)}`,
    );
  }

  readNamespacedStatefulSet(a: { name: string; namespace: string }): Promise<k8s.V1StatefulSet> {
    return this.rest.json(
      "GET",
      `/apis/apps/v1/namespaces/${e(a.namespace)}/statefulsets/${e(a.name)}`,
    );
  }
}
