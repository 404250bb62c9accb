/**
 * End-to-end tests of debugger images with `dbg docker`, against a private dockerd: the catalog,
 * images outside it (the entry script's probe picks chroot or plain), an image that exists only
 * locally, nix images and their /nix, and pulls with and without auth.
 */

import assert from "node:assert/strict";
import { dbgDocker, runDbg } from "../helpers/dbg.ts";
import { dockerdOrSkip, sh } from "../helpers/dockerd.ts";
import {
  BUSYBOX_IMAGE,
  diffTarget,
  loadTestImages,
  NIXERY_IMAGE,
  runTarget,
  sidecarsLeft,
} from "../helpers/images.ts";
import { dockerConfigFor, pushImage, registryOrSkip } from "../helpers/registry.ts";

/** An image outside the catalog whose /bin/sh is dash, dynamically linked, with its loader. */
const DYNAMIC_TOOLS = "dbg-test/dynamic-tools:1";
/** busybox:musl under a name outside the catalog, present only in this daemon. */
const STATIC_TOOLS = "dbg-test/static-tools:1";

Deno.test({
  name: "dbg docker images end to end (private dockerd)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const d = await dockerdOrSkip();
    if (!d) return;
    const dbg = (args: string[], stdin?: string) => dbgDocker(d.host, args, { stdin });
    try {
      await loadTestImages(d);
      await runTarget(d, { name: "app" });
      await runTarget(d, { name: "app-ro", readOnly: true });
      await d.docker(["tag", BUSYBOX_IMAGE, STATIC_TOOLS]);
      await buildDynamicTools(d.docker);

      await t.step("cdebug: an image that exists only locally is used without a pull", async () => {
        const r = await dbg(["app", "--image", STATIC_TOOLS, "cat", "/etc/os-release"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /ID=dbgtest/);
        assert.doesNotMatch(r.stderr, /pull/i);
      });

      await t.step("an image outside the catalog with a static shell gets chroot", async () => {
        const r = await dbg(["app", "--image", STATIC_TOOLS, "--", "cat", "/marker.txt"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "target-rootfs-marker\n");
        assert.match(
          r.stderr,
          /^dbg: chroot mode \(dbg-test\/static-tools:1 is not in the catalog, and its shell is static\): \/ is app's$/m,
        );
        const plan = JSON.parse((await dbg(["app", "--image", STATIC_TOOLS, "--dry-run"])).stdout);
        assert.equal(plan.mode, "probe");
      });

      await t.step("an image outside the catalog with a dynamic shell gets plain", async () => {
        const r = await dbg([
          "app",
          "--image",
          DYNAMIC_TOOLS,
          "--",
          "sh",
          "-c",
          'read -r l < "$DBG_TARGET_ROOT/marker.txt"; echo "$l"',
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "target-rootfs-marker\n");
        assert.match(
          r.stderr,
          /^dbg: plain mode \(dbg-test\/dynamic-tools:1 is not in the catalog, and its shell needs the loader \/lib64\/ld-linux-x86-64\.so\.2, .*--mode chroot to try\)/m,
        );
        const quiet = await dbg(["-q", "app", "--image", DYNAMIC_TOOLS, "--", "id", "-u"]);
        assert.equal(quiet.stderr, "", "-q keeps the entry script's lines too");
        assert.equal(quiet.stdout, "0\n");
      });

      await t.step("a nix image gets a temporary /nix link that is gone afterwards", async () => {
        const r = await dbg([
          "app",
          "--image",
          "nix:busybox",
          "--",
          "sh",
          "-c",
          "readlink /nix; cat /marker.txt",
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^\/proc\/\d+\/root\/nix\ntarget-rootfs-marker\n$/);
        assert.match(r.stderr, /temporary \/nix link/);
        assert.equal(await diffTarget(d, "app"), "");
        const ro = await dbg([
          "app-ro",
          "--image",
          NIXERY_IMAGE,
          "--",
          "sh",
          "-c",
          'cat "$DBG_TARGET_ROOT/marker.txt"',
        ]);
        assert.equal(ro.code, 0, ro.stderr);
        assert.match(ro.stderr, /plain mode \(nix tools need \/nix and the target is read-only/);
      });

      await t.step("images: --pull never with a missing image is one line and a hint", async () => {
        const r = await dbg(["app", "--image", "nosuch/image:1", "--pull", "never"]);
        assert.equal(r.code, 125);
        assert.match(r.stderr, /^dbg: Image nosuch\/image:1 not found: not present locally/);
        assert.match(r.stderr, /\nHint: Pull it first/);
        assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+/);
      });

      await t.step("pulls from a registry, with auth refused and then given", async () => {
        const plainReg = await registryOrSkip();
        const authReg = await registryOrSkip({ auth: { user: "dbg", password: "s3cret-pw" } });
        if (!plainReg || !authReg) return;
        try {
          const ref = `${plainReg.addr}/tools/busybox:musl`;
          await pushImage(d, BUSYBOX_IMAGE, ref);
          const r = await dbg(["app", "--image", ref, "--", "cat", "/marker.txt"]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout, "target-rootfs-marker\n");
          const missing = await dbg(["app", "--image", `${plainReg.addr}/tools/nope:1`]);
          assert.equal(missing.code, 125);
          assert.match(missing.stderr, /^dbg: Image .*\/tools\/nope:1 not found/);

          const auth = { user: "dbg", password: "s3cret-pw" };
          const secret = `${authReg.addr}/tools/busybox:musl`;
          await pushImage(d, BUSYBOX_IMAGE, secret, { auth });
          const refused = await dbg(["app", "--image", secret]);
          assert.equal(refused.code, 125);
          assert.match(refused.stderr, /^dbg: Pull of .* was refused/);
          const cfg = await dockerConfigFor(authReg.addr, auth);
          const ok = await dbgDocker(d.host, ["--debug", "app", "--image", secret, "--", "true"], {
            env: { DOCKER_CONFIG: cfg },
          });
          assert.equal(ok.code, 0, ok.stderr);
          assert.doesNotMatch(ok.stderr, /s3cret-pw/);
          assert.doesNotMatch(ok.stderr, new RegExp(btoa(`${auth.user}:${auth.password}`)));
          await Deno.remove(cfg, { recursive: true });
        } finally {
          await plainReg.stop();
          await authReg.stop();
        }
      });

      await t.step(
        "nix tools on a target with its own /nix use a private mount namespace",
        async () => {
          await d.docker([
            "create",
            "--name",
            "app-nix",
            "--network",
            "none",
            "dbg-test/target:latest",
          ]);
          const empty = await Deno.makeTempDir();
          await Deno.mkdir(`${empty}/nix/store`, { recursive: true });
          await Deno.writeTextFile(`${empty}/nix/own.txt`, "target-own-nix");
          await d.docker(["cp", `${empty}/nix`, "app-nix:/"]);
          await Deno.remove(empty, { recursive: true });
          await d.docker(["start", "app-nix"]);
          const plain = await dbg([
            "app-nix",
            "--image",
            "nix:busybox",
            "--",
            "sh",
            "-c",
            'cat "$DBG_TARGET_ROOT/nix/own.txt"',
          ]);
          assert.equal(plain.code, 0, plain.stderr);
          assert.match(plain.stderr, /plain mode/);
          const mount = await dbg([
            "app-nix",
            "--mode",
            "mount",
            "--image",
            "nix:busybox",
            "--",
            "sh",
            "-c",
            "cat /marker.txt; ls /nix/store | head -1",
          ]);
          assert.equal(mount.code, 0, mount.stderr);
          assert.match(mount.stdout, /^target-rootfs-marker\n[a-z0-9]{32}-busybox\n$/);
          assert.match(mount.stderr, /own \/nix: mount mode/);
          const own = await dbg(["-q", "app-nix", "--", "cat", "/nix/own.txt"]);
          assert.equal(own.stdout, "target-own-nix");
          assert.match(await diffTarget(d, "app-nix"), /^A \/nix/); // from docker cp, before any session
          await d.docker(["rm", "-f", "app-nix"]);
        },
      );

      await t.step("dbg images lists the catalog as a table and as JSON", async () => {
        const table = await runDbg(["images"]);
        assert.equal(table.code, 0);
        assert.match(table.stdout, /^ALIAS\s+IMAGE\s+TOOLS\s+DESCRIPTION\n/);
        assert.match(table.stdout, /\nbusybox\s+busybox:musl\s+static\s/);
        const json = JSON.parse((await runDbg(["images", "--json"])).stdout);
        assert.deepEqual(json.map((e: { name: string }) => e.name), ["busybox", "nix", "netshoot"]);
      });

      await t.step("no leftovers: no sidecars, no change in the targets", async () => {
        assert.deepEqual(await sidecarsLeft(d), []);
        for (const name of ["app", "app-ro"]) assert.equal(await diffTarget(d, name), "", name);
      });
    } finally {
      await d.stop();
    }
  },
});

/**
 * Imports {@link DYNAMIC_TOOLS}: the host's dash as /bin/sh with the libraries and loader it
 * needs, and the static BusyBox for the entry script's other tools.
 */
async function buildDynamicTools(
  docker: (args: string[]) => Promise<unknown>,
): Promise<void> {
  const work = await Deno.makeTempDir({ prefix: "dbg-dyn-" });
  try {
    const root = `${work}/rootfs`;
    const files = ["/bin/dash", "/bin/busybox"];
    const ldd = (await sh(["ldd", "/bin/dash"])).stdout;
    for (const m of ldd.matchAll(/(\/\S+) \(0x/g)) files.push(m[1]);
    for (const f of files) {
      await Deno.mkdir(`${root}${f.slice(0, f.lastIndexOf("/"))}`, { recursive: true });
      await Deno.copyFile(await Deno.realPath(f), `${root}${f}`);
      await Deno.chmod(`${root}${f}`, 0o755);
    }
    await Deno.symlink("dash", `${root}/bin/sh`);
    for (const a of ["awk", "od", "sed", "grep", "nsenter", "sleep", "cat", "id"]) {
      await Deno.symlink("busybox", `${root}/bin/${a}`);
    }
    await Deno.mkdir(`${root}/tmp`);
    await sh(["tar", "--numeric-owner", "-C", root, "-cf", `${work}/rootfs.tar`, "."]);
    await docker(["import", "--change", "ENV PATH=/bin", `${work}/rootfs.tar`, DYNAMIC_TOOLS]);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}
