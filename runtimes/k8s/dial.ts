/**
 * Connections to the Kubernetes API server, for its REST calls (rest.ts) and its streams
 * (websocket.ts): TCP without Nagle's algorithm, TLS with the kubeconfig's PEMs, an HTTP proxy
 * in HTTPS_PROXY (or HTTP_PROXY for `http:`) gone through with CONNECT unless NO_PROXY names
 * the host, as kubectl does; the reads of one connection into a buffer of its own (Inbox); and
 * the connections kept open between requests.
 *
 * Deno's sockets start with Nagle's algorithm on, and neither `fetch` nor `Deno.connectTls` can
 * turn it off. A TLS handshake then waits for the server's delayed ACK, some 40 ms (43 ms
 * against 3 ms on the tests' API server), and so does a request whose body leaves in a second
 * segment (a 14 KB PATCH over fetch's HTTP/2: 48 ms against 5). So dbg connects with
 * `Deno.connect`, sets TCP_NODELAY, and starts TLS on that. `Deno.startTls` takes no client
 * certificate: a user with one gets `Deno.connectTls`, and TCP_NODELAY set on its socket through
 * libc (nodelay.ts; Linux with glibc). Without that, a new connection and its first answer took
 * 44-49 ms against 7 with it (a Go TLS server on loopback asking for a client certificate), and
 * `dbg k8s` had the target's facts ~45 ms later than with a token (the tests' cluster).
 * (node:tls can set the option itself, but holds 200+ MiB for a 256 MiB stream.)
 *
 * @module
 */

import {
  encodeRequestHead,
  findHeadEnd,
  type HeaderMap,
  parseResponseHead,
  type ResponseHead,
} from "../../lib/http1.ts";
import { writeAll } from "../../lib/streams.ts";
import { setNoDelay } from "./nodelay.ts";
import { warmTls } from "./warm.ts";

/**
 * The PEMs of a TLS connection: the CA to trust, and a client certificate with its key; and
 * the name the server's certificate must hold when it is not the URL's host (a kubeconfig's
 * tls-server-name; `Deno.connectTls` cannot check another name than the one it connects to, so
 * not with a client certificate).
 */
export interface TlsPems {
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
}

// TLS's one-time setup, on another thread (a no-op when runtimes/mod.ts began it: see warm.ts).
warmTls();

/** The read buffer's size, and the room below which what is left moves to its start. */
const BUFFER = 256 << 10;
export const MIN_READ = 32 << 10;
const MAX_HEAD = 64 << 10;
const ALPN = ["http/1.1"];

/**
 * What has been read from a connection and not used yet: `buf[start, end)`. When less than
 * {@link MIN_READ} is free, that moves to the buffer's start (a frame head cut off, or an HTTP
 * head of at most {@link MAX_HEAD}: a read comes once all before it was used).
 */
export class Inbox {
  buf = new Uint8Array(BUFFER);
  start = 0;
  end = 0;
  constructor(readonly conn: Deno.Conn) {}

  /** Read more; false at the end of the connection. */
  async fill(): Promise<boolean> {
    if (this.buf.length - this.end < MIN_READ) {
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    const n = await this.conn.read(this.buf.subarray(this.end));
    if (n === null) return false;
    this.end += n;
    return true;
  }

  /** An HTTP response's status line and headers. */
  async head(): Promise<ResponseHead> {
    let end: number;
    while ((end = findHeadEnd(this.buf.subarray(this.start, this.end))) < 0) {
      if (this.end - this.start > MAX_HEAD) throw new Error("HTTP response head too long");
      if (!(await this.fill())) throw new Error("connection closed before an HTTP response");
    }
    const head = parseResponseHead(this.buf.subarray(this.start, this.start + end - 4));
    this.start += end;
    return head;
  }

  /**
   * A refusal's body, when the server says how long it is (the API server does for its small
   * `Status` answers); empty otherwise, as reading to the end could wait for the server's idle
   * timeout.
   */
  async body(headers: HeaderMap): Promise<string> {
    const n = Math.min(Number(headers.get("content-length") ?? 0) || 0, MAX_HEAD);
    while (this.end - this.start < n && await this.fill());
    const got = this.buf.subarray(this.start, Math.min(this.end, this.start + n));
    this.start += got.length;
    return new TextDecoder().decode(got);
  }
}

/** A connection to the API server and what has been read from it. */
export interface Link {
  readonly inbox: Inbox;
  /** The server and credentials it was made for (see {@link exchange}). */
  readonly key: string;
  /** The server closes it after this answer (`Connection: close`). */
  last?: boolean;
}

/** Connections whose last answer was read to its end, by {@link Link.key}. */
const kept = new Map<string, Inbox[]>();

/**
 * Send a request (head and body in one write) on a kept connection to the URL's server, or a
 * new one, and read the answer's head. A kept connection that the server has closed meanwhile
 * (nothing came back on it) is dropped for the next, down to a new one.
 */
export async function exchange(
  url: URL,
  request: Uint8Array,
  tls: TlsPems,
): Promise<{ link: Link; head: ResponseHead }> {
  const key = keyOf(url, tls);
  for (;;) {
    const old = kept.get(key)?.pop();
    const inbox = old ?? new Inbox(await dial(url, tls));
    try {
      await writeAll(inbox.conn, request);
      return { link: { inbox, key }, head: await inbox.head() };
    } catch (e) {
      hangUp(inbox);
      if (!old || inbox.end > inbox.start) throw e;
    }
  }
}

/**
 * Open `n` connections to the URL's server for requests to come, and keep them once their TLS
 * handshake is done.
 */
export function prepare(url: URL, tls: TlsPems, n: number): void {
  for (let i = 0; i < n; i++) {
    dial(url, tls).then(async (conn) => {
      if ("handshake" in conn) await (conn as Deno.TlsConn).handshake();
      keep({ inbox: new Inbox(conn), key: keyOf(url, tls) });
    }).catch(() => {}); // the request that wants it will say what is wrong
  }
}

/** What a connection is kept by: its server and credentials. */
function keyOf(url: URL, tls: TlsPems): string {
  return [isSecure(url), url.host, tls.ca, tls.cert, tls.key, tls.serverName].join("\n");
}

/** Keep a connection whose answer was read to its end, for the next request. */
export function keep(link: Link): void {
  const { inbox } = link;
  if (link.last || inbox.start !== inbox.end) return hangUp(inbox);
  inbox.start = inbox.end = 0;
  const list = kept.get(link.key) ?? [];
  list.push(inbox);
  kept.set(link.key, list);
}

/** Close a connection. */
export function hangUp(inbox: Inbox): void {
  try {
    inbox.conn.close();
  } catch { /* closed already */ }
}

/**
 * Connect to the URL's host, through the environment's proxy if one applies (see the module's
 * comment for TCP_NODELAY).
 */
async function dial(url: URL, tls: TlsPems): Promise<Deno.Conn> {
  const secure = isSecure(url);
  const hostname = bare(url.hostname);
  const port = Number(url.port || (secure ? 443 : 80));
  const caCerts = tls.ca ? [tls.ca] : undefined;
  const proxy = proxyFor(url, (k) => Deno.env.get(k));
  if (!proxy && secure && tls.cert && tls.key) {
    if (tls.serverName) {
      throw new Error("dbg cannot check tls-server-name with a client certificate");
    }
    const { cert, key } = tls;
    const conn = await Deno.connectTls({ hostname, port, caCerts, alpnProtocols: ALPN, cert, key });
    setNoDelay(conn);
    return conn;
  }
  if (proxy && proxy.protocol !== "http:") {
    throw new Error(`dbg goes through HTTP proxies only, not ${proxy.protocol}// ones`);
  }
  if (proxy && secure && tls.cert) {
    throw new Error("dbg cannot use a client certificate through a proxy");
  }
  const tcp = await Deno.connect(
    proxy ? { hostname: bare(proxy.hostname), port: Number(proxy.port || 80) } : { hostname, port },
  );
  tcp.setNoDelay(true);
  try {
    if (proxy) await connectThrough(tcp, proxy, `${url.hostname}:${port}`);
    if (!secure) return tcp;
    return await Deno.startTls(tcp, {
      hostname: tls.serverName ?? hostname,
      caCerts,
      alpnProtocols: ALPN,
    });
  } catch (e) {
    tcp.close();
    throw e;
  }
}

/** Ask an HTTP proxy, on `tcp`, for a tunnel to `hostPort` (CONNECT). */
async function connectThrough(tcp: Deno.Conn, proxy: URL, hostPort: string): Promise<void> {
  const headers: Record<string, string> = { Host: hostPort };
  if (proxy.username) {
    const user = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
    headers["Proxy-Authorization"] = `Basic ${btoa(user)}`;
  }
  await writeAll(tcp, encodeRequestHead("CONNECT", hostPort, headers));
  const head = await new Inbox(tcp).head();
  if (head.status < 200 || head.status > 299) {
    throw new Error(
      `the proxy ${proxy.host} refused to connect: ${head.status} ${head.statusText}`,
    );
  }
}

/** `https:` and `wss:`. */
function isSecure(url: URL): boolean {
  return url.protocol === "https:" || url.protocol === "wss:";
}

/** A URL's hostname without the brackets of an IPv6 address. */
function bare(hostname: string): string {
  return hostname.replace(/^\[(.*)\]$/, "$1");
}

/**
 * The proxy for `url` as curl and Go read the environment: HTTPS_PROXY for `https:` and `wss:`
 * (HTTP_PROXY for `http:` and `ws:`), upper or lower case, unless NO_PROXY is `*` or lists the
 * host, a domain of it (`example.com`, `.example.com`) or its IP address.
 */
export function proxyFor(url: URL, env: (k: string) => string | undefined): URL | undefined {
  const names = isSecure(url) ? ["HTTPS_PROXY", "https_proxy"] : ["HTTP_PROXY", "http_proxy"];
  const value = names.map(env).find(Boolean);
  if (!value) return undefined;
  const host = bare(url.hostname).toLowerCase();
  const skip = (env("NO_PROXY") ?? env("no_proxy") ?? "").split(",").map((s) =>
    s.trim().toLowerCase()
  );
  for (const s of skip) {
    if (s === "*") return undefined;
    // (A port is left out; an IPv6 address may stand in brackets to have one.)
    const ipv6 = /^\[(.*)\](?::\d+)?$/.exec(s)?.[1];
    const hostPart = ipv6 ?? (s.indexOf(":") === s.lastIndexOf(":") ? s.replace(/:\d+$/, "") : s);
    const name = hostPart.replace(/^\*?\./, "");
    if (name && (host === name || host.endsWith(`.${name}`))) return undefined;
  }
  return new URL(value.includes("://") ? value : `http://${value}`);
}
