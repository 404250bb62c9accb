/**
 * Pulling an image into containerd without the Transfer service (containerd 1.6 has none):
 * the OCI distribution API (../registry/client.ts), blobs written through Content.Write, layers
 * unpacked through Diff.Apply into committed snapshots, and the image record created (issue 3).
 *
 * Nothing the registry says is taken on trust: a pinned digest must be the manifest's, every
 * blob its descriptor's digest and size, and every unpacked layer its config's diff id, or the
 * pull fails before the snapshot is committed under the config's chain id. A layer containerd
 * already holds (its digest checked by containerd when it was written) must have the
 * descriptor's size, and is not fetched again; manifests and configs are always fetched and
 * checked, since dbg reads them.
 *
 * Everything is kept under one lease per image (`dbg-image-…`, no expiry), which is the GC
 * root of its blobs and snapshots, so no gc.ref labels are needed.
 *
 * @module
 */

import type { PullProgress } from "../../lib/adapter.ts";
import { DbgError, imageNotFound, pullRefused } from "../../lib/errors.ts";
import { parseImageRef } from "../../images/ref.ts";
import {
  AuthRefused,
  MANIFEST_MAX,
  readCapped,
  type Registry,
  registryFor,
  RegistryLied,
  sha256,
} from "../registry/client.ts";
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
  const lied = (what: string, e?: unknown) =>
    new DbgError(`Cannot pull ${ref}: the registry ${what}`, {
      hint: "dbg pulls nothing it cannot verify; check the registry, or pin a digest you trust",
      ...(e ? { cause: e } : {}),
    });
  /** A manifest (by tag or digest) or a blob, checked against its descriptor when it has one. */
  const fetchBlob = async (
    d: { digest: string; size?: number },
    kind: "manifests" | "blobs",
    accept?: string,
  ) => {
    const pinned = d.digest.startsWith("sha256:");
    let res: Response;
    try {
      res = await reg.get(`${kind}/${d.digest}`, accept);
    } catch (e) {
      if (e instanceof AuthRefused) throw pullRefused(ref, e.message);
      if (e instanceof RegistryLied) throw lied(e.message, e);
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
    if (!res.ok) {
      await res.body?.cancel();
      throw new DbgError(`Cannot pull ${ref}: HTTP ${res.status} from the registry`);
    }
    const exact = pinned && d.size !== undefined;
    let data: Uint8Array;
    try {
      data = await readCapped(res, exact ? d.size! : MANIFEST_MAX, d.digest, exact);
    } catch (e) {
      if (e instanceof RegistryLied) throw lied(e.message, e);
      throw e;
    }
    const digest = await sha256(data);
    if (pinned && digest !== d.digest) throw lied(`sent ${digest} for ${d.digest}`);
    return { data, digest, mediaType: res.headers.get("content-type") ?? "" };
  };
  /** Whether containerd holds the blob; its size must then be the descriptor's. */
  const have = async (d: { digest: string; size?: number }) => {
    const info = await client.call(CONTENT, "Info", { digest: d.digest }, ns).then(
      (r) => (r as { info?: { size?: number } }).info,
      () => undefined,
    );
    if (info && d.size !== undefined && Number(info.size) !== d.size) {
      throw lied(`says ${d.digest} has ${d.size} bytes; containerd holds ${info.size} bytes of it`);
    }
    return !!info;
  };
  /** Content containerd lacks is written; containerd checks the digest once more. */
  const store = async (digest: string, data: Uint8Array) => {
    if (await have({ digest, size: data.length })) return;
    await client.writeContent({
      namespace: o.namespace,
      lease,
      ref: `dbg-${digest}`,
      digest,
      data,
    });
  };

  // The top descriptor, by tag or by the pinned digest, which fetchBlob checks.
  const top = await fetchBlob({ digest: r.digest ?? r.tag ?? "latest" }, "manifests", ACCEPT);
  await store(top.digest, top.data);
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
  if (!Array.isArray(diffIds) || diffIds.length !== layers.length) {
    throw lied(`sent ${layers.length} layers for ${diffIds?.length ?? 0} diff ids`);
  }
  const total = layers.reduce((n, l) => n + l.size, 0);
  let done = 0;
  for (const layer of layers) {
    // A layer containerd has is not fetched again: it checked the digest when it was written.
    if (!await have(layer)) {
      const blob = await fetchBlob(layer, "blobs");
      await store(layer.digest, blob.data);
    }
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
        const { applied } = await client.call(DIFF, "Apply", {
          diff: { media_type: layer.mediaType, digest: layer.digest, size: layer.size },
          mounts: prepared.mounts,
        }, { ...ns, lease, deadlineMs: 600_000 }).catch((e) => {
          if (!(e instanceof ContainerdError)) throw e;
          throw new DbgError(`Cannot pull ${ref}: containerd cannot unpack layer ${layer.digest}`, {
            hint: `containerd says: ${e.message}`,
            cause: e,
          });
        }) as { applied?: { digest?: string } };
        // The snapshot is committed under the config's chain id only if it is that layer.
        if (applied?.digest !== diffIds[i]) {
          throw lied(`sent layer ${layer.digest}, whose content is not diff id ${diffIds[i]}`);
        }
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
      target: {
        media_type: top.mediaType.split(";")[0],
        digest: top.digest,
        size: top.data.length,
      },
    },
  }, { ...ns, lease });
  o.progress?.({ status: "done" });
}
