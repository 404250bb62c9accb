/**
 * The few Kubernetes API calls dbg makes, as plain HTTP/1.1 requests on the connections of
 * dial.ts (not `fetch`, which cannot turn Nagle's algorithm off: see there): the same method
 * names and arguments as `@kubernetes/client-node`'s CoreV1Api and AppsV1Api, whose loading
 * costs more than all of dbg's own start-up. Objects come back as the API server sends them
 * (timestamps stay strings). A failed call throws {@link ApiError}.
 *
 * @module
 */

import type * as k8s from "@kubernetes/client-node";
import {
  type BodyDecoder,
  bodyDecoder,
  bodyFraming,
  concatBytes,
  encodeRequestHead,
  jsonLines,
} from "../../lib/http1.ts";
import { exchange, hangUp, keep, type Link, type TlsPems } from "./dial.ts";

/** What every request carries: headers (credentials) and the PEMs of its TLS connection. */
export interface Auth {
  headers: Record<string, string>;
  tls: TlsPems;
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

  /** Send a request; the answer's head, and its body still to read. Not 2xx throws. */
  async #send(
    method: string,
    path: string,
    o: CallOptions = {},
  ): Promise<{ link: Link; body: BodyDecoder }> {
    const { headers, tls } = await this.auth();
    const url = new URL(this.server.replace(/\/$/, "") + path);
    for (const [k, v] of Object.entries(o.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const body = o.body === undefined
      ? undefined
      : new TextEncoder().encode(JSON.stringify(o.body));
    const head = encodeRequestHead(method, `${url.pathname}${url.search}`, {
      Host: url.host,
      "User-Agent": "dbg",
      Accept: "application/json",
      ...headers,
      ...(body
        ? {
          "Content-Type": o.contentType ?? "application/json",
          "Content-Length": String(body.length),
        }
        : {}),
    });
    const { link, head: res } = await exchange(url, body ? concatBytes([head, body]) : head, tls);
    const dec = bodyDecoder(bodyFraming(method, res));
    if (res.headers.get("connection")?.toLowerCase() === "close") link.last = true;
    if (res.status < 200 || res.status > 299) {
      throw new ApiError(res.status, await readText(link, dec));
    }
    return { link, body: dec };
  }

  /** One call; the answer as JSON. */
  async json<T>(method: string, path: string, o: CallOptions = {}): Promise<T> {
    const { link, body } = await this.#send(method, path, o);
    return JSON.parse(await readText(link, body)) as T;
  }

  /** One call; the answer as text (logs). */
  async text(method: string, path: string, o: CallOptions = {}): Promise<string> {
    const { link, body } = await this.#send(method, path, o);
    return await readText(link, body);
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
    const { link, body } = await this.#send("GET", path, { query: { ...query, watch: true } });
    let stopped = false;
    (async () => {
      for await (const ev of jsonLines<{ type: string; object: unknown }>(bodyOf(link, body))) {
        onObject(ev.type, ev.object);
      }
    })().then(() => onEnd(null), (e) => onEnd(stopped ? null : e));
    return () => {
      stopped = true;
      hangUp(link.inbox);
    };
  }
}

/**
 * A body's bytes as they arrive (views of the connection's buffer, valid until the next); the
 * connection is kept for another request once the body ended, and closed otherwise.
 */
async function* bodyOf(link: Link, dec: BodyDecoder): AsyncGenerator<Uint8Array> {
  const { inbox } = link;
  let ended = false;
  try {
    for (;;) {
      if (inbox.start < inbox.end) {
        const parts = dec.push(inbox.buf.subarray(inbox.start, inbox.end));
        inbox.start = inbox.end;
        yield* parts;
      }
      if (dec.done) return void (ended = true);
      if (!(await inbox.fill())) {
        if (!dec.end()) throw new Error("the API server closed the connection within an answer");
        return;
      }
    }
  } finally {
    if (ended) keep(link);
    else hangUp(inbox);
  }
}

/** A whole body as text. */
async function readText(link: Link, dec: BodyDecoder): Promise<string> {
  const text = new TextDecoder();
  let out = "";
  for await (const part of bodyOf(link, dec)) out += text.decode(part, { stream: true });
  return out + text.decode();
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
