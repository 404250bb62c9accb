/**
 * Test images, built locally (no registry, no internet) and cached as one `docker save` tarball
 * in `${XDG_CACHE_HOME:-$HOME/.cache}/dbg-tests/images/`, keyed by a hash of their inputs.
 *
 * @module
 */

import {
  buildBusyboxImage,
  buildNixeryImage,
  buildTargetImage,
  FIXTURES,
  HOST_BUSYBOX,
} from "../../scripts/_images.ts";
import { exists, type PrivateDockerd } from "./dockerd.ts";

/** Stand-in for the catalog's default debugger image (static busybox, hard-linked applets). */
export const BUSYBOX_IMAGE = "busybox:musl";
/** The shell-less target image. */
export const TARGET_IMAGE = "dbg-test/target:latest";
/** A nixery-like image: tools under /nix/store, /bin holds absolute symlinks into it. */
export const NIXERY_IMAGE = "nixery.dev/shell/busybox:latest";
/** All test images. */
export const TEST_IMAGES = [BUSYBOX_IMAGE, TARGET_IMAGE, NIXERY_IMAGE] as const;
/** The nix store path of busybox in {@link NIXERY_IMAGE}. */
export const NIX_BUSYBOX = `/nix/store/${"a".repeat(32)}-busybox`;

const SELF = new URL(import.meta.url);
const BUILDER = new URL("../../scripts/_images.ts", import.meta.url);

/** Directory of the image cache (outside the repo). */
export function imageCacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") || `${Deno.env.get("HOME") ?? "/root"}/.cache`;
  return `${base}/dbg-tests/images`;
}

/** Hash of everything the images are made of: C sources, the recipes, the host busybox. */
/** Path of the cached `docker save` tarball of the test images (it may not exist yet). */
export async function imageCacheTarball(): Promise<string> {
  return `${imageCacheDir()}/images-${await inputsKey()}.tar`;
}

async function inputsKey(): Promise<string> {
  const bb = await Deno.stat(HOST_BUSYBOX);
  const parts = [
    await Deno.readTextFile(new URL("target.c", FIXTURES)),
    await Deno.readTextFile(new URL("hello.c", FIXTURES)),
    await Deno.readTextFile(new URL("attach.c", FIXTURES)),
    await Deno.readTextFile(SELF),
    await Deno.readTextFile(BUILDER),
    `busybox:${bb.size}:${bb.mtime?.getTime() ?? 0}`,
  ];
  const data = new TextEncoder().encode(parts.join("\0"));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(digest.slice(0, 12), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** An engine's CLI: a private dockerd's, or a private Podman's (whose `save` needs `-m`). */
export type EngineCli = Pick<PrivateDockerd, "docker"> & {
  podman?: boolean;
  /** A copy of a file that the engine's CLI can read (a rootless one cannot read root's). */
  stage?: (path: string) => Promise<string>;
};

/** Builds the {@link TEST_IMAGES} from scratch into `d` (the recipes live in scripts/_images.ts). */
async function buildImages(d: EngineCli): Promise<void> {
  await buildBusyboxImage(d.docker, BUSYBOX_IMAGE);
  await buildTargetImage(d.docker, { ref: TARGET_IMAGE, plants: true });
  await buildNixeryImage(d.docker, { ref: NIXERY_IMAGE, store: NIX_BUSYBOX });
}

async function haveAll(d: EngineCli): Promise<boolean> {
  const r = await d.docker(["image", "inspect", ...TEST_IMAGES], { check: false });
  return r.code === 0;
}

/**
 * Makes the {@link TEST_IMAGES} available in `d`: loaded from the cache tarball, or built once
 * and saved into the cache.
 */
export async function loadTestImages(d: EngineCli): Promise<void> {
  if (await haveAll(d)) return;
  const dir = imageCacheDir();
  const key = await inputsKey();
  const cached = `${dir}/images-${key}.tar`;
  if (await exists(cached)) {
    const r = await d.docker(["load", "-i", d.stage ? await d.stage(cached) : cached], {
      check: false,
    });
    if (r.code === 0 && await haveAll(d)) return;
    await Deno.remove(cached).catch(() => {}); // corrupt: rebuild
  }
  await buildImages(d);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${cached}.${Deno.pid}.tmp`;
  await d.docker(["save", ...d.podman ? ["-m"] : [], "-o", tmp, ...TEST_IMAGES]);
  await Deno.rename(tmp, cached); // atomic: concurrent runs never see half a tarball
  for await (const e of Deno.readDir(dir)) {
    const stale = e.name.startsWith("images-") && e.name !== `images-${key}.tar` &&
      !e.name.endsWith(".tmp");
    if (stale) await Deno.remove(`${dir}/${e.name}`).catch(() => {});
  }
}

/** How to run a target container. */
export interface TargetOpts {
  /** Container name. */
  name: string;
  /** `--user` value, e.g. `1000:1000`. */
  user?: string;
  /** Run with `--read-only`. */
  readOnly?: boolean;
  /** Run with `--pid host`. */
  pidHost?: boolean;
  /** Run with `--ipc shareable`. */
  ipcShareable?: boolean;
  /** Image (default {@link TARGET_IMAGE}). */
  image?: string;
  /** `--network` (default none). */
  network?: string;
  /** `--workdir`. */
  workdir?: string;
  /** Arguments after the image (the target's own flags, e.g. `--drop 1000:1000`). */
  args?: string[];
}

/**
 * Runs a detached target (`--network none` unless asked) and waits until its log says "target started".
 * Returns the container id.
 */
export async function runTarget(d: EngineCli, o: TargetOpts): Promise<string> {
  const args = ["run", "-d", "--network", o.network ?? "none", "--name", o.name];
  if (o.user) args.push("--user", o.user);
  if (o.readOnly) args.push("--read-only");
  if (o.pidHost) args.push("--pid", "host");
  if (o.ipcShareable) args.push("--ipc", "shareable");
  if (o.workdir) args.push("--workdir", o.workdir);
  args.push(o.image ?? TARGET_IMAGE, ...o.args ?? []);
  const id = (await d.docker(args)).stdout.trim();
  const deadline = Date.now() + 10_000;
  while (true) {
    const logs = await d.docker(["logs", id], { check: false });
    if (logs.stdout.includes("target started")) return id;
    const state = await d.docker(["inspect", "-f", "{{.State.Status}}", id], { check: false });
    if (state.stdout.trim() === "exited" || Date.now() > deadline) {
      throw new Error(
        `target ${o.name} did not start (state ${state.stdout.trim()}): ${logs.stdout}${logs.stderr}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `docker diff <name>` output, trimmed (empty when the container's rootfs is unchanged). */
export async function diffTarget(d: EngineCli, name: string): Promise<string> {
  return (await d.docker(["diff", name])).stdout.trim();
}

/** Names of all containers (running or not) named `dbg-…` or labelled `dbg.session`. */
export async function sidecarsLeft(d: EngineCli): Promise<string[]> {
  const names = (args: string[]) =>
    d.docker(["ps", "-a", ...args, "--format", "{{.Names}}"]).then((r) =>
      r.stdout.split("\n").map((s) => s.trim()).filter(Boolean)
    );
  // The daemon removes an exited sidecar itself (AutoRemove), just after dbg has its exit code:
  // give a removal in progress a moment (up to 3 s) before calling the sidecar left over.
  let left: string[] = [];
  for (let i = 0; i < 15; i++) {
    const all = await names([]);
    const labelled = await names(["--filter", "label=dbg.session"]);
    left = [...new Set([...all.filter((n) => n.startsWith("dbg-")), ...labelled])].sort();
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return left;
}
