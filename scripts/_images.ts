/**
 * Builds dbg's local images from the host, without a registry or the internet: a busybox:musl
 * stand-in from Debian's static `/bin/busybox`, a shell-less `gcc -static` target, and a
 * nixery-like image. Shared by the tests (tests/helpers/images.ts), `deno task bench` and
 * `deno task demo`; each build takes any docker CLI bound to a daemon.
 *
 * @module
 */

import { exists, sh, type ShResult } from "../tests/helpers/dockerd.ts";

/** Runs `docker <args>` against one daemon; throws on a non-zero exit unless `check` is false. */
export type DockerCli = (args: string[], opts?: { check?: boolean }) => Promise<ShResult>;

/** The host's busybox (Debian's busybox-static), copied into the stand-in images. */
export const HOST_BUSYBOX = "/bin/busybox";
/** C sources of the target's programs (`target.c`, `hello.c`, `attach.c`). */
export const FIXTURES = new URL("../tests/fixtures/", import.meta.url);

/** Finds `name` on PATH (like `command -v`), or null. */
export async function which(name: string): Promise<string | null> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter(Boolean)) {
    const path = `${dir}/${name}`;
    try {
      const st = await Deno.stat(path);
      if (st.isFile && ((st.mode ?? 0) & 0o111) !== 0) return path;
    } catch {
      // not in this dir
    }
  }
  return null;
}

/**
 * True when `path` is an ELF executable without a PT_INTERP header, i.e. statically linked, so
 * it runs in any rootfs. Reads the program headers itself: `file` may not be installed.
 */
export async function isStaticElf(path: string): Promise<boolean> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return false;
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 64 || v.getUint32(0) !== 0x7f454c46 || bytes[4] !== 2) return false;
  const le = bytes[5] === 1; // 64-bit only; little or big endian
  const phoff = Number(v.getBigUint64(32, le));
  const phentsize = v.getUint16(54, le), phnum = v.getUint16(56, le);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > bytes.length) return false;
    if (v.getUint32(off, le) === 3) return false; // PT_INTERP: needs a dynamic loader
  }
  return true;
}

async function applets(): Promise<string[]> {
  const out = (await sh([HOST_BUSYBOX, "--list"])).stdout;
  return out.split("\n").map((s) => s.trim()).filter((s) => s && !s.includes("/"));
}

async function mkdirs(root: string, dirs: string[]): Promise<void> {
  for (const d of dirs) await Deno.mkdir(`${root}${d}`, { recursive: true });
}

async function mkTmp(root: string): Promise<void> {
  await Deno.mkdir(`${root}/tmp`, { recursive: true });
  await Deno.chmod(`${root}/tmp`, 0o1777);
}

/** Builds a rootfs in a temp dir with `fill`, imports it as `ref`, removes the temp dir. */
async function importBuilt(
  docker: DockerCli,
  img: { ref: string; changes: string[] },
  fill: (root: string, work: string) => Promise<void>,
): Promise<void> {
  const work = await Deno.makeTempDir({ prefix: "dbg-images-" });
  try {
    const root = `${work}/rootfs`;
    await Deno.mkdir(root);
    await fill(root, work);
    const tarball = `${work}/rootfs.tar`;
    await sh(["tar", "--numeric-owner", "-C", root, "-cf", tarball, "."]);
    await docker(["import", ...img.changes.flatMap((c) => ["--change", c]), tarball, img.ref]);
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/**
 * Imports a busybox:musl stand-in as `ref`: the host's static busybox with every applet as a
 * hard link in /bin, like the official image. Needs {@link HOST_BUSYBOX} to be static.
 */
export async function buildBusyboxImage(docker: DockerCli, ref: string): Promise<void> {
  const names = await applets();
  const changes = [
    'CMD ["sh"]',
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  ];
  await importBuilt(docker, { ref, changes }, async (root) => {
    await mkdirs(root, ["/bin", "/etc", "/root"]);
    await mkTmp(root);
    await Deno.copyFile(HOST_BUSYBOX, `${root}/bin/busybox`);
    await Deno.chmod(`${root}/bin/busybox`, 0o755);
    for (const a of names) {
      if (a !== "busybox") await Deno.link(`${root}/bin/busybox`, `${root}/bin/${a}`);
    }
    await Deno.writeTextFile(`${root}/etc/passwd`, "root:x:0:0:root:/root:/bin/sh\n");
    await Deno.writeTextFile(`${root}/etc/group`, "root:x:0:\n");
  });
}

/** What {@link buildTargetImage} builds. */
export interface TargetImage {
  /** Image reference to import as. */
  ref: string;
  /** Contents of the target's /etc/os-release (default: the test target's). */
  osRelease?: string;
  /** Image labels, e.g. a hash of the inputs to tell whether a rebuild is needed. */
  labels?: Record<string, string>;
  /** Plant what a hostile target would: `ls` and `curl` on its PATH (copies of hello). */
  plants?: boolean;
}

/**
 * Imports a shell-less target: /app/target (prints "target started", sleeps until SIGTERM) and
 * /usr/bin/hello and /usr/bin/attach (ptrace-attaches to a PID, as strace -p does), all
 * `gcc -static`; no /bin/sh. With `plants`, a hostile target's plants on its PATH too:
 * /usr/local/bin/ls and /usr/local/bin/curl are copies of hello. Throws when gcc fails or is
 * missing.
 */
export async function buildTargetImage(docker: DockerCli, img: TargetImage): Promise<void> {
  const changes = [
    "ENV PATH=/usr/local/bin:/usr/bin:/app",
    "ENV TARGET_MARKER=from-target-env",
    "WORKDIR /app",
    'CMD ["/app/target"]',
    ...Object.entries(img.labels ?? {}).map(([k, v]) => `LABEL ${k}=${v}`),
  ];
  await importBuilt(docker, { ref: img.ref, changes }, async (root, work) => {
    await mkdirs(root, ["/app", "/usr/bin", "/etc", "/root", "/proc", "/dev", "/sys"]);
    await mkTmp(root);
    for (const d of ["/home/app", "/app/data"]) {
      await Deno.mkdir(`${root}${d}`, { recursive: true });
      await Deno.chown(`${root}${d}`, 1000, 1000);
    }
    const cc = async (src: string, out: string) => {
      const file = new URL(src, FIXTURES).pathname;
      await sh(["gcc", "-static", "-O2", "-s", "-o", out, file], { cwd: work });
    };
    await cc("target.c", `${root}/app/target`);
    await cc("hello.c", `${root}/usr/bin/hello`);
    await cc("attach.c", `${root}/usr/bin/attach`);
    await Deno.mkdir(`${root}/usr/local/bin`, { recursive: true });
    for (const planted of img.plants ? ["ls", "curl"] : []) {
      await Deno.copyFile(`${root}/usr/bin/hello`, `${root}/usr/local/bin/${planted}`);
    }
    const osRelease = img.osRelease ?? 'ID=dbgtest\nPRETTY_NAME="dbg test target"\n';
    await Deno.writeTextFile(`${root}/etc/os-release`, osRelease);
    await Deno.writeTextFile(`${root}/marker.txt`, "target-rootfs-marker\n");
    await Deno.writeTextFile(
      `${root}/etc/passwd`,
      "root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000:app:/home/app:/sbin/nologin\n",
    );
    await Deno.writeTextFile(`${root}/etc/group`, "root:x:0:\napp:x:1000:\n");
  });
}

/**
 * Imports a nixery-like image as `ref`: busybox under the nix store path `store`, /bin holding
 * absolute symlinks into it.
 */
export async function buildNixeryImage(
  docker: DockerCli,
  img: { ref: string; store: string },
): Promise<void> {
  const names = await applets();
  const changes = ['CMD ["sh"]', "ENV PATH=/bin"];
  await importBuilt(docker, { ref: img.ref, changes }, async (root) => {
    const bin = `${root}${img.store}/bin`;
    await mkdirs(root, [img.store + "/bin", "/bin", "/etc"]);
    await mkTmp(root);
    await Deno.copyFile(HOST_BUSYBOX, `${bin}/busybox`);
    await Deno.chmod(`${bin}/busybox`, 0o755);
    await Deno.symlink(`${img.store}/bin/busybox`, `${root}/bin/busybox`);
    for (const a of names) {
      if (a === "busybox") continue;
      await Deno.symlink("busybox", `${bin}/${a}`);
      await Deno.symlink(`${img.store}/bin/${a}`, `${root}/bin/${a}`);
    }
    await Deno.writeTextFile(`${root}/etc/passwd`, "root:x:0:0:root:/root:/bin/sh\n");
  });
}

/** True when the daemon behind `docker` has image `ref`. */
export async function hasImage(docker: DockerCli, ref: string): Promise<boolean> {
  return (await docker(["image", "inspect", ref], { check: false })).code === 0;
}

/** True when gcc is on PATH (needed by {@link buildTargetImage}). */
export async function hasGcc(): Promise<boolean> {
  return await which("gcc") !== null;
}

/** True when the host busybox exists and is static (needed by {@link buildBusyboxImage}). */
export async function hasStaticBusybox(): Promise<boolean> {
  return await exists(HOST_BUSYBOX) && await isStaticElf(HOST_BUSYBOX);
}
