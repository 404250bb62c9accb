/**
 * The pod sandbox image of the private cluster (cluster.ts): a static `pause` built with gcc,
 * cached as a `docker save` tarball, and its import into containerd's `k8s.io` namespace.
 *
 * @module
 */

import type { PrivateContainerd } from "./containerd.ts";
import { exists, sh } from "./dockerd.ts";
import { imageCacheDir } from "./images.ts";
import { basename, sha256Hex } from "./util.ts";

/** The pod sandbox image, a static `pause` built locally (imported into namespace `k8s.io`). */
export const PAUSE_IMAGE = "dbg.test/pause:1";

/** The sandbox's process: sleeps, reaps children, exits 0 on SIGINT/SIGTERM. */
const PAUSE_C = `#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = quit;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = reap;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &sa, NULL);
  for (;;) pause();
}
`;

const PAUSE_CFLAGS = ["-static", "-O2", "-s"];

/** Go's name of the host architecture, as image configs spell it. */
function goArch(): string {
  return ({ x86_64: "amd64", aarch64: "arm64" } as Record<string, string>)[Deno.build.arch] ??
    Deno.build.arch;
}

/**
 * Path of a `docker save` tarball of {@link PAUSE_IMAGE} (one layer with /pause), cached in the
 * test image cache under a hash of its source; built with `gcc -static` when missing.
 */
export async function pauseTarball(): Promise<string> {
  const key = (await sha256Hex([PAUSE_C, ...PAUSE_CFLAGS, goArch()].join("\0"))).slice(0, 24);
  const cacheDir = imageCacheDir();
  const path = `${cacheDir}/pause-${key}.tar`;
  if (await exists(path)) return path;
  const work = await Deno.makeTempDir({ prefix: "dbg-pause-" });
  try {
    await Deno.writeTextFile(`${work}/pause.c`, PAUSE_C);
    await Deno.mkdir(`${work}/rootfs`);
    await sh(["gcc", ...PAUSE_CFLAGS, "-o", `${work}/rootfs/pause`, `${work}/pause.c`]);
    const layerTar = `${work}/layer.tar`;
    await sh([
      ...["tar", "--numeric-owner", "--owner=0", "--group=0", "--mtime=@0"],
      ...["-cf", layerTar, "-C", `${work}/rootfs`, "pause"],
    ]);
    const diffId = await sha256Hex(await Deno.readFile(layerTar));
    await Deno.mkdir(`${work}/image/${diffId}`, { recursive: true });
    await Deno.rename(layerTar, `${work}/image/${diffId}/layer.tar`);
    const config = new TextEncoder().encode(JSON.stringify({
      architecture: goArch(),
      os: "linux",
      config: { Entrypoint: ["/pause"] },
      rootfs: { type: "layers", diff_ids: [`sha256:${diffId}`] },
    }));
    const configName = `${await sha256Hex(config)}.json`;
    await Deno.writeFile(`${work}/image/${configName}`, config);
    const manifest = [{
      Config: configName,
      RepoTags: [PAUSE_IMAGE],
      Layers: [`${diffId}/layer.tar`],
    }];
    await Deno.writeTextFile(`${work}/image/manifest.json`, JSON.stringify(manifest));
    await Deno.mkdir(cacheDir, { recursive: true });
    const tmp = `${path}.${Deno.pid}.tmp`;
    await sh([
      ...["tar", "--numeric-owner", "--owner=0", "--group=0", "-cf", tmp, "-C", `${work}/image`],
      ...["manifest.json", configName, `${diffId}/layer.tar`],
    ]);
    await Deno.rename(tmp, path); // atomic: concurrent runs never see half a tarball
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  for await (const e of Deno.readDir(cacheDir)) {
    const stale = e.name.startsWith("pause-") && e.name !== basename(path) &&
      !e.name.endsWith(".tmp");
    if (stale) await Deno.remove(`${cacheDir}/${e.name}`).catch(() => {});
  }
  return path;
}

export async function importPause(c: PrivateContainerd, tar: string): Promise<void> {
  await c.ctr(
    ["images", "import", "--all-platforms", "--snapshotter", c.snapshotter, tar],
    { namespace: "k8s.io" },
  );
}
