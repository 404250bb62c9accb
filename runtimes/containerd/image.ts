/**
 * The debugger image on containerd: from its name to the snapshot its rootfs is prepared on
 * (protocols.md §2.5). The image config's layers give the chain id, which is the key of the
 * unpacked top layer in the snapshotter.
 *
 * @module
 */

import { imageNotFound, ImageNotPresent } from "../../lib/errors.ts";
import { parseImageRef } from "../../images/ref.ts";
import { Code, type ContainerdClient, ContainerdError } from "./client.ts";

const IMAGES = "containerd.services.images.v1.Images";
const CONTENT = "containerd.services.content.v1.Content";
const SNAPSHOTS = "containerd.services.snapshots.v1.Snapshots";

const INDEX_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
];

/** containerd's name for an image reference (`busybox:musl` → docker.io/library/busybox:musl). */
export function containerdName(ref: string): string {
  const r = parseImageRef(ref);
  return `${r.registry}/${r.repository}${r.digest ? `@${r.digest}` : `:${r.tag}`}`;
}

/** The OCI/Docker architecture name of this machine. */
export function hostArch(): string {
  return { x86_64: "amd64", aarch64: "arm64" }[Deno.build.arch] ?? Deno.build.arch;
}

/** The chain id of a list of layer diff ids (image-spec identity). */
export async function chainId(diffIds: string[]): Promise<string> {
  let chain = diffIds[0];
  for (const diff of diffIds.slice(1)) {
    const bytes = new TextEncoder().encode(`${chain} ${diff}`);
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    chain = `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  }
  return chain;
}

/** The fields dbg reads of an index, a manifest or an image config. */
interface Blob {
  mediaType?: string;
  manifests?: Array<{ digest: string; platform?: { os?: string; architecture?: string } }>;
  config?: { digest: string };
  rootfs?: { diff_ids: string[] };
}

async function readJson(client: ContainerdClient, ns: string, digest: string): Promise<Blob> {
  const parts = await client.collect(CONTENT, "Read", { digest }, { namespace: ns });
  const chunks = parts.map((p) => p.data as Uint8Array);
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) (all.set(c, off), (off += c.length));
  return JSON.parse(new TextDecoder().decode(all));
}

/** The debugger image as containerd has it: its name and the chain id its rootfs builds on. */
export interface LocalImage {
  name: string;
  chainId: string;
}

/**
 * Find `ref` in namespace `ns`, unpacked for `snapshotter`. Throws `ImageNotPresent` when the
 * image is not there (the lifecycle then pulls), and says so when it is there but not unpacked.
 */
export async function localImage(
  client: ContainerdClient,
  ns: string,
  ref: string,
  snapshotter: string,
): Promise<LocalImage> {
  const name = containerdName(ref);
  let target: { media_type: string; digest: string };
  try {
    const res = await client.call(IMAGES, "Get", { name }, { namespace: ns });
    target = (res.image as { target: { media_type: string; digest: string } }).target;
  } catch (e) {
    if (e instanceof ContainerdError && e.code === Code.NOT_FOUND) {
      throw new ImageNotPresent(ref, e);
    }
    throw e;
  }
  let manifest = await readJson(client, ns, target.digest);
  if (INDEX_TYPES.includes(manifest.mediaType ?? target.media_type)) {
    const arch = hostArch();
    const entry = (manifest.manifests ?? []).find((
      m: { platform?: { os?: string; architecture?: string } },
    ) => m.platform?.os === "linux" && m.platform?.architecture === arch);
    if (!entry) throw imageNotFound(ref, `no linux/${arch} image in its index`);
    manifest = await readJson(client, ns, entry.digest);
  }
  if (!manifest.config) throw imageNotFound(ref, "its manifest has no config");
  const config = await readJson(client, ns, manifest.config.digest);
  if (!config.rootfs?.diff_ids.length) throw imageNotFound(ref, "its config lists no layers");
  const id = await chainId(config.rootfs.diff_ids);
  try {
    await client.call(SNAPSHOTS, "Stat", { snapshotter, key: id }, { namespace: ns });
  } catch (e) {
    if (e instanceof ContainerdError && e.code === Code.NOT_FOUND) {
      throw imageNotFound(
        ref,
        `present but not unpacked for the ${snapshotter} snapshotter`,
        `Unpack it: ctr -n ${ns} images unpack --snapshotter ${snapshotter} ${name}`,
      );
    }
    throw e;
  }
  return { name, chainId: id };
}
