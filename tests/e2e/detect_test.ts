/**
 * End-to-end tests of `dbg TARGET` without a runtime word, on a private dockerd, a private
 * rootful Podman service and a private containerd at once: one target on each engine, a name on
 * two engines, an unknown name, an engine that is down, and a terminal session through tmux.
 * (Rootless Podman's own socket is found in podman_test.ts.)
 */

import assert from "node:assert/strict";
import { containerdOrSkip, loadImagesInto, runCtrTarget } from "../helpers/containerd.ts";
import { dbgArgv, runDbg } from "../helpers/dbg.ts";
import { dockerdOrSkip } from "../helpers/dockerd.ts";
import { loadTestImages, runTarget, sidecarsLeft } from "../helpers/images.ts";
import { podmanOrSkip } from "../helpers/podman.ts";
import { shellQuote as q, Tty } from "../helpers/tty.ts";

Deno.test({
  name: "dbg TARGET finds the target on Docker, Podman or containerd",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const [d, p, c] = await Promise.all([
      dockerdOrSkip(),
      podmanOrSkip({ rootless: false }),
      containerdOrSkip(),
    ]);
    try {
      if (!d || !p || !c) return;
      // Every engine through the user's settings, as on a node that runs them all.
      const env = { DOCKER_HOST: d.host, CONTAINER_HOST: p.host, CONTAINERD_ADDRESS: c.address };
      const dbg = (args: string[], more: Record<string, string> = {}) =>
        runDbg(args, { env: { ...env, ...more } });
      await Promise.all([loadTestImages(d), loadTestImages(p), loadImagesInto(c, "default")]);
      await runTarget(d, { name: "on-docker" });
      await runTarget(d, { name: "twin" });
      await runTarget(p, { name: "on-podman" });
      await runTarget(p, { name: "twin" });
      await runCtrTarget(c, { namespace: "default", id: "on-containerd" });

      await t.step(
        "one target on each engine: found, named, and its exit code is dbg's",
        async () => {
          const where = { docker: d.host, podman: p.host, containerd: c.address };
          for (const [runtime, at] of Object.entries(where)) {
            const r = await dbg([
              `on-${runtime}`,
              "--",
              "sh",
              "-c",
              "grep ^ID= /etc/os-release; exit 3",
            ]);
            assert.equal(r.code, 3, r.stderr);
            assert.match(r.stdout, /^ID=dbgtest$/m);
            assert.ok(
              r.stderr.startsWith(`dbg: on-${runtime} is on ${runtime} (${at})\n`),
              r.stderr,
            );
            assert.match(r.stderr, /chroot mode/);
          }
          const quiet = await dbg(["-q", "on-podman", "--", "true"]);
          assert.equal(quiet.code, 0, quiet.stderr);
          assert.equal(quiet.stderr, "");
        },
      );

      await t.step("a name on two engines is an error with the command for each", async () => {
        const r = await dbg(["twin", "--", "ls", "-l"]);
        assert.equal(r.code, 125);
        assert.equal(
          r.stderr,
          `dbg: twin is on 2 engines: docker (${d.host}), podman (${p.host})\n` +
            "Hint: Name the runtime: dbg docker twin -- ls -l  or  dbg podman twin -- ls -l\n",
        );
      });

      await t.step("an unknown name is one line that says where dbg looked", async () => {
        const r = await dbg(["nowhere"]);
        assert.equal(r.code, 125);
        const [line, hint, ...rest] = r.stderr.trimEnd().split("\n");
        assert.equal(
          line,
          `dbg: No container nowhere on docker (${d.host}), podman (${p.host}), ` +
            `containerd (${c.address})`,
        );
        assert.equal(
          hint,
          "Hint: List containers with: docker ps, podman ps, ctr tasks ls; for a pod: dbg k8s POD",
        );
        assert.deepEqual(rest, []);
      });

      await t.step("an engine that is down does not hide the others", async () => {
        const gone = { CONTAINER_HOST: "unix:///nonexistent/podman.sock" };
        const r = await dbg(["-q", "twin", "--", "true"], gone);
        assert.equal(r.code, 0, r.stderr);
        const none = await dbg(["nowhere"], gone);
        assert.match(none.stderr, /podman \(unix:\/\/\/nonexistent\/podman.sock: no such socket\)/);
      });

      await t.step("a terminal session through tmux, on the engine found", async () => {
        const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
        const argv = ["env", ...vars, ...dbgArgv(["on-containerd"])];
        const tty = await Tty.start(`${argv.map(q).join(" ")}; echo EXIT=$?; sleep 30`);
        try {
          await tty.waitFor(/^\[dbg\] \/app # ?$/m, 40_000);
          await tty.send("[ -t 0 ] && echo ON-A-TTY; exit 5", "Enter");
          const screen = await tty.waitFor(/^EXIT=5$/m, 20_000);
          assert.match(screen, /^dbg: on-containerd is on containerd \(/m);
          assert.match(screen, /^ON-A-TTY$/m);
        } finally {
          await tty.kill();
        }
      });

      await t.step("nothing is left on any engine", async () => {
        assert.deepEqual(await sidecarsLeft(d), []);
        assert.deepEqual(await sidecarsLeft(p), []);
        const ctrs = (await c.ctr(["containers", "ls", "-q"], { namespace: "default" })).stdout;
        assert.deepEqual(ctrs.split("\n").filter((l) => l.startsWith("dbg-")), []);
      });
    } finally {
      await Promise.all([d?.stop(), p?.stop(), c?.stop()]);
    }
  },
});
