/**
 * The OCI distribution API as dbg's own pulls speak it (containerd has no Transfer service
 * before 2.0): token or basic auth with the credentials of ~/.docker/config.json, and a
 * transport that trusts the registry no further than it must.
 * - Every blob and manifest fetched by digest is checked against that digest and its size.
 * - Bodies are read up to a cap: a descriptor's size, 4 MiB for a manifest or an index (as
 *   containerd), 1 MiB for a token.
 * - Redirects are followed by dbg: never from https to http, and credentials stay with the
 *   registry's own host.
 * - Credentials go to a token service only over https, or when the registry itself is plain
 *   HTTP (a loopback or `--insecure-registry` one, which is tried over https first).
 *
 * @module
 */

import { parseImageRef } from "../../images/ref.ts";
import { registryAuthHeader } from "./auth.ts";

/** The most dbg reads of a manifest or an index by tag (containerd's limit too). */
export const MANIFEST_MAX = 4 << 20;
/** The most dbg reads of a token response. */
const TOKEN_MAX = 1 << 20;
const REDIRECTS_MAX = 10;

/** The registry wants credentials that dbg does not have, or refused the ones it has. */
export class AuthRefused extends Error {}

/**
 * The registry sent something other than what it promised: a size, a scheme. The message
 * follows "the registry".
 */
export class RegistryLied extends Error {}

/** `sha256:<hex>` of `data`. */
export async function sha256(data: Uint8Array): Promise<string> {
  const hash = new Uint8Array(
    await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>),
  );
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * The body of `res`, refused as soon as it passes `max` bytes; `exact` also refuses a shorter
 * one (a descriptor's size is exact).
 */
export async function readCapped(
  res: Response,
  max: number,
  what: string,
  exact = false,
): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > max) {
    await res.body?.cancel();
    throw new RegistryLied(`sent ${declared} bytes of ${what}, more than the ${max} expected`);
  }
  const out = new Uint8Array(Number.isFinite(declared) ? declared : Math.min(max, 1 << 16));
  let buf = out;
  let n = 0;
  for await (const chunk of res.body ?? []) {
    if (n + chunk.length > max) {
      await res.body?.cancel().catch(() => {});
      throw new RegistryLied(`sent more than the ${max} bytes expected of ${what}`);
    }
    if (n + chunk.length > buf.length) {
      const bigger = new Uint8Array(Math.min(max, Math.max(buf.length * 2, n + chunk.length)));
      bigger.set(buf.subarray(0, n));
      buf = bigger;
    }
    buf.set(chunk, n);
    n += chunk.length;
  }
  if (exact && n !== max) throw new RegistryLied(`sent ${n} bytes of ${what}, not ${max}`);
  return buf.subarray(0, n);
}

type Creds = { username?: string; password?: string; identitytoken?: string };

/** A registry client for one repository: remembers the authorization it needed. */
export class Registry {
  #authorization?: string;

  constructor(
    readonly base: string,
    readonly repository: string,
    readonly creds?: Creds,
  ) {}

  /**
   * GET `/v2/<repository>/<path>`: authorizes on a 401 challenge and follows redirects (see
   * the module's rules). The caller reads or cancels the body.
   */
  async get(path: string, accept?: string): Promise<Response> {
    const url = `${this.base}/v2/${this.repository}/${path}`;
    const headers: Record<string, string> = accept ? { Accept: accept } : {};
    if (this.#authorization) headers.Authorization = this.#authorization;
    let res = await follow(url, headers);
    if (res.status === 401 && !this.#authorization) {
      await res.body?.cancel();
      this.#authorization = await this.#authorize(res.headers.get("www-authenticate") ?? "");
      res = await follow(url, { ...headers, Authorization: this.#authorization });
    }
    return res;
  }

  async #authorize(challenge: string): Promise<string> {
    const basic = this.creds?.username
      ? `Basic ${btoa(`${this.creds.username}:${this.creds.password ?? ""}`)}`
      : undefined;
    if (/^basic/i.test(challenge)) {
      if (!basic) {
        throw new AuthRefused("the registry wants a login, and there are no credentials for it");
      }
      return basic;
    }
    const params = Object.fromEntries(
      [...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (!params.realm) throw new Error(`unknown auth challenge: ${challenge.slice(0, 200)}`);
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set("service", params.service);
    url.searchParams.set("scope", params.scope ?? `repository:${this.repository}:pull`);
    // An https registry's credentials never travel in clear text: a plain-HTTP token service
    // gets an anonymous request.
    const clear = url.protocol !== "https:" && this.base.startsWith("https:");
    const res = await follow(url.href, basic && !clear ? { Authorization: basic } : {});
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new AuthRefused(
        `token request: HTTP ${res.status}${
          clear && basic ? ` (dbg sends no credentials to the plain-HTTP ${url.origin})` : ""
        }`,
      );
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`token request: HTTP ${res.status}`);
    }
    const body = JSON.parse(new TextDecoder().decode(await readCapped(res, TOKEN_MAX, "a token")));
    return `Bearer ${body.token ?? body.access_token}`;
  }
}

/**
 * fetch, following redirects itself: never from https to http, and with the Authorization
 * header only while on the first URL's host (blob storage gets a signed URL instead).
 */
async function follow(url: string, headers: Record<string, string>): Promise<Response> {
  const first = new URL(url);
  let at = first;
  for (let hop = 0;; hop++) {
    const res = await fetch(at, { headers, redirect: "manual" });
    const location = res.headers.get("location");
    if (res.status < 300 || res.status > 399 || !location) return res;
    await res.body?.cancel();
    if (hop === REDIRECTS_MAX) {
      throw new RegistryLied(`redirected more than ${REDIRECTS_MAX} times`);
    }
    const next = new URL(location, at);
    if (at.protocol === "https:" && next.protocol !== "https:") {
      throw new RegistryLied(`redirected from https to ${next.protocol.slice(0, -1)}`);
    }
    if (next.host !== first.host) {
      const { Authorization: _, ...rest } = headers;
      headers = rest;
    }
    at = next;
  }
}

/** The client for `ref`'s repository, with its credentials from ~/.docker/config.json. */
export async function registryFor(ref: string, insecure: string[]): Promise<Registry> {
  const r = parseImageRef(ref);
  const host = r.registry === "docker.io" ? "registry-1.docker.io" : r.registry;
  const insecureOk = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/.test(host) ||
    insecure.includes(host);
  const header = await registryAuthHeader(ref, {
    env: (k) => Deno.env.get(k),
    home: Deno.env.get("HOME"),
  });
  const creds = header
    ? JSON.parse(new TextDecoder().decode(
      Uint8Array.from(atob(header.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)),
    ))
    : undefined;
  const scheme = insecureOk ? await schemeOf(host) : "https";
  return new Registry(`${scheme}://${host}`, r.repository, creds);
}

/**
 * The scheme of a registry dbg may reach over plain HTTP (loopback, `--insecure-registry`):
 * https when it answers there, as Docker tries it first, else http.
 */
async function schemeOf(host: string): Promise<"https" | "http"> {
  try {
    const res = await fetch(`https://${host}/v2/`, { signal: AbortSignal.timeout(5_000) });
    await res.body?.cancel();
    return "https";
  } catch {
    return "http";
  }
}
