/**
 * Smoke test of the test infrastructure: private dockerd, local test images, targets, registries.
 *
 * @module
 */

import { dockerdOrSkip } from "./dockerd.ts";
import {
  BUSYBOX_IMAGE,
  diffTarget,
  loadTestImages,
  NIXERY_IMAGE,
  runTarget,
  sidecarsLeft,
  TARGET_IMAGE,
} from "./images.ts";
import { pushImage, registryOrSkip } from "./registry.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

function assertEquals<T>(actual: T, expected: T, msg: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`assertion failed: ${msg}: got ${a}, want ${e}`);
}

Deno.test({
  name: "private dockerd starts, loads test images, runs the targets",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const d = await dockerdOrSkip();
    if (!d) return;
    try {
      let started = performance.now();
      await loadTestImages(d);
      console.log(`  images ready in ${((performance.now() - started) / 1000).toFixed(1)}s`);

      await t.step("targets run (root, non-root, read-only, pid host)", async () => {
        await runTarget(d, { name: "t-root", ipcShareable: true });
        await runTarget(d, { name: "t-user", user: "1000:1000" });
        await runTarget(d, { name: "t-ro", readOnly: true });
        await runTarget(d, { name: "t-pidhost", pidHost: true });
        for (const n of ["t-root", "t-user", "t-ro", "t-pidhost"]) {
          const r = await d.docker(["inspect", "-f", "{{.State.Running}}", n]);
          assertEquals(r.stdout.trim(), "true", `${n} running`);
        }
        const user = await d.docker(["inspect", "-f", "{{.Config.User}}", "t-user"]);
        assertEquals(user.stdout.trim(), "1000:1000", "t-user user");
        assertEquals(await diffTarget(d, "t-root"), "", "fresh target has no diff");
        assertEquals(await sidecarsLeft(d), [], "no sidecars");
      });

      await t.step("target image is shell-less and has its markers", async () => {
        const env = await d.docker(["image", "inspect", "-f", "{{json .Config}}", TARGET_IMAGE]);
        const cfg = JSON.parse(env.stdout) as { Env: string[]; WorkingDir: string; Cmd: string[] };
        assert(cfg.Env.includes("TARGET_MARKER=from-target-env"), "TARGET_MARKER env");
        assert(cfg.Env.includes("PATH=/usr/local/bin:/usr/bin:/app"), "PATH env");
        assertEquals(cfg.WorkingDir, "/app", "workdir");
        assertEquals(cfg.Cmd, ["/app/target"], "cmd");
        const sh = await d.docker(["exec", "t-root", "/bin/sh", "-c", "true"], { check: false });
        assert(sh.code !== 0, "target has no /bin/sh");
        const hello = await d.docker(["exec", "t-root", "hello"]);
        assertEquals(hello.stdout.trim(), "hello from target", "hello output");
      });

      await t.step("busybox:musl and nixery images run", async () => {
        const ok = await d.docker([
          "run",
          "--rm",
          "--network",
          "none",
          BUSYBOX_IMAGE,
          "echo",
          "ok",
        ]);
        assertEquals(ok.stdout.trim(), "ok", "busybox echo");
        const links = await d.docker([
          ...["run", "--rm", "--network", "none", BUSYBOX_IMAGE],
          ...["sh", "-c", "stat -c %h /bin/busybox; test -L /bin/sh || echo hardlink"],
        ]);
        assert(links.stdout.includes("hardlink"), "applets are hard links");
        assert(parseInt(links.stdout) > 100, "busybox link count > 100");
        const nix = await d.docker([
          ...["run", "--rm", "--network", "none", NIXERY_IMAGE],
          ...["/bin/sh", "-c", "echo ok; readlink /bin/sh"],
        ]);
        assertEquals(
          nix.stdout.trim().split("\n"),
          ["ok", "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-busybox/bin/sh"],
          "nixery sh",
        );
      });

      await t.step("registries: push and pull, auth enforced", async () => {
        const plain = await registryOrSkip();
        if (!plain) return;
        const auth = { user: "dbg", password: "s3cret-pw" };
        const authed = await registryOrSkip({ auth });
        try {
          const ref = `${plain.addr}/test/busybox:musl`;
          await pushImage(d, BUSYBOX_IMAGE, ref);
          await d.docker(["pull", "-q", ref]);
          await d.docker(["rmi", ref]);
          if (!authed) return;
          const aref = `${authed.addr}/test/busybox:musl`;
          await d.docker(["tag", BUSYBOX_IMAGE, aref]);
          const denied = await d.docker(["push", "-q", aref], { check: false });
          assert(denied.code !== 0, "push without login fails");
          await d.docker(["rmi", aref]);
          await pushImage(d, BUSYBOX_IMAGE, aref, { auth });
          const anon = await d.docker(["pull", "-q", aref], { check: false });
          assert(anon.code !== 0, `anonymous pull from auth registry must fail: ${anon.stdout}`);
          await d.docker(["login", "-u", auth.user, "--password-stdin", authed.addr], {
            stdin: auth.password,
          });
          await d.docker(["pull", "-q", aref]);
          await d.docker(["logout", authed.addr]);
          await d.docker(["rmi", aref]);
        } finally {
          await plain.stop();
          await authed?.stop();
        }
      });

      started = performance.now();
      await d.docker(["stop", "-t", "5", "t-root"]);
      const code = await d.docker(["inspect", "-f", "{{.State.ExitCode}}", "t-root"]);
      assertEquals(code.stdout.trim(), "0", "target exits 0 on SIGTERM");
      assert(performance.now() - started < 4000, "target stopped by SIGTERM, not SIGKILL");
    } finally {
      const dir = d.dir;
      await d.stop();
      let left = true;
      try {
        await Deno.lstat(dir);
      } catch {
        left = false;
      }
      assert(!left, `${dir} removed`);
    }
  },
});
