/**
 * Pulling an image into containerd without the Transfer service (containerd 1.6 has none):
 * the OCI distribution API over fetch (token or basic auth from ~/.docker/config.json), blobs
 * written through Content.Write, layers unpacked through Diff.Apply into committed snapshots,
 * and the image record created (issue 3).
 *
 * Everything is kept under one lease per image (`dbg-image-…`, no expiry), which is the GC
 * root of its blobs and snapshots, so no gc.ref labels are needed.
 *
 * @module
 */

import type { PullProgress } from "../../lib/adapter.ts";
import { DbgError, imageNotFound, pullRefused } from "../../lib/errors.ts";
import { parseImageRef, registryAuthHeader } from "../registry/auth.ts";
import { Code, type ContainerdClient, ContainerdError } from "./client.ts";
import { chainId, containerdName, hostArch } from "./image.ts";

const SNAPSHOTS = "containerd.services.snapshots.v1.Snapshots";
const CONTENT = "containerd.services.content.v1.Content";
const IMAGES = "containerd.services.images.v1.Images";
const LEASES = "containerd.services.leases.v1.Leases";
const DIFF = "containerd.services.diff.v1.Diff";

const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string };
}

/** Options of a pull. */
export interface PullOpts {
  namespace: string;
  snapshotter: string;
  /** Registries reached over plain HTTP besides localhost. */
  insecure?: string[];
  progress?: PullProgress;
  debug: (msg: string) => void;
}

/** The registry wants credentials that dbg does not have, or refused the ones it has. */
class AuthRefused extends Error {}

/** Registry client for one repository: remembers the auth it needed. */
class Registry {
  #base: string;
  #repo: string;
  #creds?: { username?: string; password?: string; identitytoken?: string };
  #authorization?: string;

  constructor(base: string, repo: string, creds?: Registry["creds"]) {
    this.#base = base;
    this.#repo = repo;
    this.#creds = creds;
  }

  get creds() {
    return this.#creds;
  }

  async get(path: string, accept?: string): Promise<Response> {
    const url = `${this.#base}/v2/${this.#repo}/${path}`;
    const headers: Record<string, string> = accept ? { Accept: accept } : {};
    if (this.#authorization) headers.Authorization = this.#authorization;
    let res = await fetch(url, { headers });
    if (res.status === 401 && !this.#authorization) {
      await res.body?.cancel();
      this.#authorization = await this.#authorize(res.headers.get("www-authenticate") ?? "");
      res = await fetch(url, { headers: { ...headers, Authorization: this.#authorization } });
    }
    return res;
  }

  async #authorize(challenge: string): Promise<string> {
    const basic = this.#creds?.username
      ? `Basic ${btoa(`${this.#creds.username}:${this.#creds.password ?? ""}`)}`
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
    if (!params.realm) throw new Error(`unknown auth challenge: ${challenge}`);
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set("service", params.service);
    url.searchParams.set("scope", params.scope ?? `repository:${this.#repo}:pull`);
    const res = await fetch(url, { headers: basic ? { Authorization: basic } : {} });
    if (res.status === 401 || res.status === 403) {
      throw new AuthRefused(`token request: HTTP ${res.status}`);
    }
    if (!res.ok) throw new Error(`token request: HTTP ${res.status}`);
    const body = await res.json() as { token?: string; access_token?: string };
    return `Bearer ${body.token ?? body.access_token}`;
  }
}

async function registryFor(ref: string, insecure: string[]): Promise<Registry> {
  const r = parseImageRef(ref);
  const host = r.registry === "docker.io" ? "registry-1.docker.io" : r.registry;
  const plain = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/.test(host) ||
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
  return new Registry(`${plain ? "http" : "https"}://${host}`, r.repository, creds);
}

async function sha256(data: Uint8Array): Promise<string> {
  const hash = new Uint8Array(
    await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>),
  );
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Pull `ref` into containerd and unpack it for the snapshotter. */
export async function pullImage(client: ContainerdClient, ref: string, o: PullOpts): Promise<void> {
  const name = containerdName(ref);
  const reg = await registryFor(ref, o.insecure ?? []);
  const ns = { namespace: o.namespace };
  const lease = `dbg-image-${(await sha256(new TextEncoder().encode(name))).slice(7, 19)}`;
  const created = await client.call(
    LEASES,
    "Create",
    { id: lease, labels: { "dbg.image": name } },
    ns,
  )
    .then(() => true, (e) => {
      if (!(e instanceof ContainerdError && e.code === 6)) throw e; // ALREADY_EXISTS: reuse
      return false;
    });
  try {
    await pullUnder(client, ref, o, { name, lease, registry: reg });
  } catch (e) {
    // A pull that fails leaves nothing: the lease it made goes, and with it what it wrote.
    if (created) await client.call(LEASES, "Delete", { id: lease, sync: true }, ns).catch(() => {});
    throw e;
  }
}

async function pullUnder(
  client: ContainerdClient,
  ref: string,
  o: PullOpts,
  p: { name: string; lease: string; registry: Registry },
): Promise<void> {
  const r = parseImageRef(ref);
  const { name, lease } = p;
  const reg = p.registry;
  const ns = { namespace: o.namespace };
  const fetchBlob = async (d: { digest: string }, kind: "manifests" | "blobs", accept?: string) => {
    let res: Response;
    try {
      res = await reg.get(`${kind}/${d.digest}`, accept);
    } catch (e) {
      if (e instanceof AuthRefused) throw pullRefused(ref, e.message);
      throw new DbgError(`Cannot pull ${ref}: ${e instanceof Error ? e.message : e}`, {
        hint:
          "Check that the registry is reachable from this host (--insecure-registry for plain HTTP)",
        cause: e,
      });
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw pullRefused(ref, `HTTP ${res.status} from the registry`);
    }
    if (res.status === 404) {
      await res.body?.cancel();
      throw imageNotFound(ref, "the registry has no such image (manifest unknown)");
    }
    if (!res.ok) throw new DbgError(`Cannot pull ${ref}: HTTP ${res.status} from the registry`);
    const data = new Uint8Array(await res.arrayBuffer());
    return { data, mediaType: res.headers.get("content-type") ?? "" };
  };
  const store = async (digest: string, data: Uint8Array) => {
    const have = await client.call(CONTENT, "Info", { digest }, ns).then(() => true, () => false);
    if (have) return;
    if (await sha256(data) !== digest) {
      throw new DbgError(`Cannot pull ${ref}: ${digest} does not match its content`);
    }
    await client.writeContent({
      namespace: o.namespace,
      lease,
      ref: `dbg-${digest}`,
      digest,
      data,
    });
  };

  // The top descriptor: by tag or digest. Its digest is the hash of the bytes we got.
  const top = await fetchBlob({ digest: r.digest ?? r.tag ?? "latest" }, "manifests", ACCEPT);
  const topDigest = await sha256(top.data);
  await store(topDigest, top.data);
  let manifest = JSON.parse(new TextDecoder().decode(top.data));
  if (manifest.manifests) {
    const arch = hostArch();
    const entry = (manifest.manifests as Descriptor[]).find((m) =>
      m.platform?.os === "linux" && m.platform?.architecture === arch
    );
    if (!entry) throw imageNotFound(ref, `no linux/${arch} image in its index`);
    const m = await fetchBlob(entry, "manifests", ACCEPT);
    await store(entry.digest, m.data);
    manifest = JSON.parse(new TextDecoder().decode(m.data));
  }
  const config = await fetchBlob(manifest.config, "blobs");
  await store(manifest.config.digest, config.data);
  const diffIds: string[] = JSON.parse(new TextDecoder().decode(config.data)).rootfs.diff_ids;
  const layers = manifest.layers as Descriptor[];
  const total = layers.reduce((n, l) => n + l.size, 0);
  let done = 0;
  for (const layer of layers) {
    const blob = await fetchBlob(layer, "blobs");
    await store(layer.digest, blob.data);
    done += layer.size;
    o.progress?.({ status: "Downloading", id: layer.digest, current: done, total });
  }

  // Unpack: one committed snapshot per layer, named by its chain id.
  let parent = "";
  for (const [i, layer] of layers.entries()) {
    const chain = await chainId(diffIds.slice(0, i + 1));
    const exists = await client.call(
      SNAPSHOTS,
      "Stat",
      { snapshotter: o.snapshotter, key: chain },
      ns,
    )
      .then(() => true, (e) => {
        if (e instanceof ContainerdError && e.code === Code.NOT_FOUND) return false;
        throw e;
      });
    if (!exists) {
      const key = `dbg-extract-${crypto.randomUUID()}`;
      const prepared = await client.call(SNAPSHOTS, "Prepare", {
        snapshotter: o.snapshotter,
        key,
        parent,
      }, { ...ns, lease });
      try {
        await client.call(DIFF, "Apply", {
          diff: { media_type: layer.mediaType, digest: layer.digest, size: layer.size },
          mounts: prepared.mounts,
        }, { ...ns, lease, deadlineMs: 600_000 });
        await client.call(SNAPSHOTS, "Commit", { snapshotter: o.snapshotter, name: chain, key }, {
          ...ns,
          lease,
        });
      } catch (e) {
        await client.call(SNAPSHOTS, "Remove", { snapshotter: o.snapshotter, key }, ns).catch(
          () => {},
        );
        throw e;
      }
    }
    parent = chain;
  }
  o.debug(`pulled ${name}: ${layers.length} layers, top snapshot ${parent}`);

  await client.call(IMAGES, "Delete", { name }, ns).catch(() => {});
  await client.call(IMAGES, "Create", {
    image: {
      name,
      target: { media_type: top.mediaType.split(";")[0], digest: topDigest, size: top.data.length },
    },
  }, { ...ns, lease });
  o.progress?.({ status: "done" });
}
