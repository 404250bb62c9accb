/**
 * Test images in a private containerd (containerd.ts): their containerd names, importing them
 * from the cached `docker save` tarball, and copies of the target image with another user.
 *
 * @module
 */

import type { PrivateContainerd } from "./containerd.ts";
import { exists, sh, startDockerd } from "./dockerd.ts";
import {
  BUSYBOX_IMAGE,
  imageCacheTarball,
  loadTestImages,
  NIXERY_IMAGE,
  TARGET_IMAGE,
  TEST_IMAGES,
} from "./images.ts";
import { sha256Hex } from "./util.ts";

/**
 * The name containerd gives a docker-style reference, as `ctr images import` of a `docker save`
 * tarball produces it: `busybox:musl` → `docker.io/library/busybox:musl`,
 * `dbg-test/target` → `docker.io/dbg-test/target:latest`, `nixery.dev/x/y:t` unchanged.
 */
export function imageName(ref: string): string {
  let name = ref;
  const slash = name.indexOf("/");
  const first = slash < 0 ? "" : name.slice(0, slash);
  const hasDomain = first.includes(".") || first.includes(":") || first === "localhost";
  if (!hasDomain) name = `docker.io/${name}`;
  if (name.startsWith("docker.io/") && !name.slice("docker.io/".length).includes("/")) {
    name = `docker.io/library/${name.slice("docker.io/".length)}`;
  }
  const lastPart = name.slice(name.lastIndexOf("/") + 1);
  if (!lastPart.includes(":") && !name.includes("@")) name += ":latest";
  return name;
}

/** {@link BUSYBOX_IMAGE} as containerd names it: `docker.io/library/busybox:musl`. */
export const CTR_BUSYBOX_IMAGE = imageName(BUSYBOX_IMAGE);
/** {@link TARGET_IMAGE} as containerd names it: `docker.io/dbg-test/target:latest`. */
export const CTR_TARGET_IMAGE = imageName(TARGET_IMAGE);
/** {@link NIXERY_IMAGE} as containerd names it: `nixery.dev/shell/busybox:latest`. */
export const CTR_NIXERY_IMAGE = imageName(NIXERY_IMAGE);
/** All test images, as containerd names them. */
export const CTR_TEST_IMAGES = TEST_IMAGES.map(imageName);

/**
 * Path of the cached `docker save` tarball of the three test images (images.ts maintains it).
 * When it is missing, a private dockerd is started to build it, then stopped.
 */
export async function cachedImagesTarball(): Promise<string> {
  const path = await imageCacheTarball();
  if (await exists(path)) return path;
  const d = await startDockerd();
  try {
    await loadTestImages(d);
  } finally {
    await d.stop();
  }
  if (await exists(path)) return path;
  throw new Error(`${path} missing after loadTestImages()`);
}

async function imagesIn(c: PrivateContainerd, namespace: string): Promise<string[]> {
  const r = await c.ctr(["images", "ls", "-q"], { namespace });
  return r.stdout.split("\n").map((s) => s.trim()).filter(Boolean);
}

async function importTarball(c: PrivateContainerd, namespace: string, tar: string) {
  return await c.ctr(
    ["images", "import", "--all-platforms", "--snapshotter", c.snapshotter, tar],
    { namespace, check: false },
  );
}

/**
 * Makes the three test images available (and unpacked) in `namespace`, from the cached
 * `docker save` tarball. Their names there are {@link CTR_TEST_IMAGES}.
 */
export async function loadImagesInto(c: PrivateContainerd, namespace: string): Promise<void> {
  const have = async () => {
    const names = await imagesIn(c, namespace);
    return CTR_TEST_IMAGES.every((n) => names.includes(n));
  };
  if (await have()) return;
  let tar = await cachedImagesTarball();
  let r = await importTarball(c, namespace, tar);
  if (r.code !== 0 || !await have()) {
    await Deno.remove(tar).catch(() => {}); // corrupt: rebuild once
    tar = await cachedImagesTarball();
    r = await importTarball(c, namespace, tar);
  }
  if (r.code !== 0 || !await have()) {
    throw new Error(`ctr images import ${tar} into ${namespace} failed: ${r.stderr.trim()}`);
  }
}

/** Docker-save `manifest.json` entry. */
interface SaveEntry {
  Config: string;
  RepoTags?: string[];
  Layers: string[];
}

/**
 * Name of a copy of the target image whose config sets `User` to `user` (ctr 1.6's `run` has
 * no `--user`; the image's User ends up in the container's `process.user` the same way).
 * Imported into `namespace` on first use.
 */
export async function targetImageForUser(
  c: PrivateContainerd,
  namespace: string,
  user: string,
): Promise<string> {
  const ref = `dbg-test/target:user-${user.replace(/[^A-Za-z0-9_.-]/g, "-")}`;
  const name = imageName(ref);
  if ((await imagesIn(c, namespace)).includes(name)) return name;
  const src = await cachedImagesTarball();
  const manifest = JSON.parse(
    (await sh(["tar", "-xOf", src, "manifest.json"])).stdout,
  ) as SaveEntry[];
  const entry = manifest.find((m) => m.RepoTags?.includes(TARGET_IMAGE));
  if (!entry) throw new Error(`${TARGET_IMAGE} not in ${src}`);
  const work = await Deno.makeTempDir({ dir: `${c.dir}/tmp`, prefix: "user-image-" });
  try {
    await sh(["tar", "-xf", src, "-C", work, entry.Config, ...entry.Layers]);
    const cfg = JSON.parse(await Deno.readTextFile(`${work}/${entry.Config}`));
    cfg.config = { ...(cfg.config ?? {}), User: user };
    const bytes = new TextEncoder().encode(JSON.stringify(cfg));
    const cfgName = `${await sha256Hex(bytes)}.json`;
    await Deno.writeFile(`${work}/${cfgName}`, bytes);
    const out: SaveEntry[] = [{ Config: cfgName, RepoTags: [ref], Layers: entry.Layers }];
    await Deno.writeTextFile(`${work}/manifest.json`, JSON.stringify(out));
    const tar = `${work}/image.tar`;
    await sh(["tar", "-cf", tar, "-C", work, "manifest.json", cfgName, ...entry.Layers]);
    const r = await importTarball(c, namespace, tar);
    if (r.code !== 0) throw new Error(`import of ${ref} failed: ${r.stderr.trim()}`);
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return name;
}
