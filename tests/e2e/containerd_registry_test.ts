/**
 * dbg's own containerd pull against a registry that lies (issue 10): nothing it cannot verify
 * reaches containerd's snapshots, no credential goes out in clear text, and nothing it says
 * reaches the terminal raw.
 *
 * @module
 */

import assert from "node:assert/strict";
import { containerdOrSkip, runCtrTarget, taskStatus } from "../helpers/containerd.ts";
import { runDbg } from "../helpers/dbg.ts";
import { startHostileRegistry } from "../helpers/hostile_registry.ts";
import { dockerConfigFor } from "../helpers/registry.ts";
import { poll } from "../helpers/tty.ts";

Deno.test({
  name: "dbg containerd pulls from a hostile registry",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const c = await containerdOrSkip();
    if (!c) return;
    const reg = await startHostileRegistry();
    const env = { DENO_CERT: reg.caFile };
    const dbg = (args: string[], extra: Record<string, string> = {}) =>
      runDbg(["containerd", "--address", c.address, ...args], { env: { ...env, ...extra } });
    const refused = (r: { code: number; stderr: string }, what: RegExp) => {
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, what);
      const raw = [...r.stderr].filter((ch) => ch < " " && ch !== "\n");
      assert.deepEqual(raw, [], "no control character reaches the terminal");
    };
    /** Snapshots and images containerd holds (what a lie must not leave). */
    const held = async () =>
      (await c.ctr(["snapshots", "ls"])).stdout + (await c.ctr(["images", "ls", "-q"])).stdout;
    try {
      await runCtrTarget(c, { namespace: "default", id: "app" });

      await t.step("the true image pulls over https and runs", async () => {
        const r = await dbg(["-q", "app", "--image", `${reg.addr}/good:1`, "--", "echo", "ok"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "ok\n");
      });

      await t.step("a pinned digest must be the manifest's", async () => {
        const pinned = `${reg.addr}/good@sha256:${"0".repeat(64)}`;
        refused(
          await dbg(["app", "--image", pinned, "--", "true"]),
          new RegExp(
            `^dbg: Cannot pull .*: the registry sent ${reg.manifestDigest} for sha256:0+$`,
            "m",
          ),
        );
        const right = `${reg.addr}/good@${reg.manifestDigest}`;
        const r = await dbg(["-q", "app", "--image", right, "--", "true"]);
        assert.equal(r.code, 0, r.stderr);
      });

      await t.step("a layer that is not its config's diff id is never committed", async () => {
        const before = await held();
        refused(
          await dbg(["app", "--image", `${reg.addr}/diffid:1`, "--", "true"]),
          /^dbg: Cannot pull .*: the registry sent layer sha256:\w+, whose content is not diff id sha256:e{64}$/m,
        );
        const after = await held();
        assert.doesNotMatch(after, /e{64}/);
        assert.equal(after, before);
      });

      await t.step("a blob longer than its descriptor says is refused", async () => {
        refused(
          await dbg(["app", "--image", `${reg.addr}/size:1`, "--", "true"]),
          /^dbg: Cannot pull .*: the registry sent \d+ bytes of sha256:\w+, more than the \d+ expected$/m,
        );
        refused(
          await dbg(["app", "--image", `${reg.addr}/sizeheld:1`, "--", "true"]),
          /^dbg: Cannot pull .*: the registry says sha256:\w+ has \d+ bytes; containerd holds \d+ bytes of it$/m,
        );
      });

      await t.step("a redirect from https to http is not followed", async () => {
        refused(
          await dbg(["app", "--image", `${reg.addr}/redirect:1`, "--", "true"]),
          /^dbg: Cannot pull .*: the registry redirected from https to http$/m,
        );
      });

      await t.step("credentials never go to a plain-HTTP token service", async () => {
        const cfg = await dockerConfigFor(reg.addr, { user: "dbg", password: "s3cret-pw" });
        try {
          const r = await dbg(["app", "--image", `${reg.addr}/realm:1`, "--", "true"], {
            DOCKER_CONFIG: cfg,
          });
          refused(r, /^dbg: Pull of .* was refused.*dbg sends no credentials to the plain-HTTP/m);
          assert.doesNotMatch(r.stderr, /s3cret-pw/);
          assert.deepEqual(reg.tokenAuthorizations, []);
        } finally {
          await Deno.remove(cfg, { recursive: true });
        }
      });

      await t.step("escape sequences from the registry are not printed raw", async () => {
        const r = await dbg(["app", "--image", `${reg.addr}/escape:1`, "--", "true"]);
        refused(r, /^dbg: Cannot pull .*: containerd cannot unpack layer sha256:\w+$/m);
        assert.match(r.stderr, /application\/x ]0;pwned/);
      });

      await t.step("a target that stops during the pull is not joined by its old PID", async () => {
        await runCtrTarget(c, { namespace: "default", id: "victim" });
        const run = dbg(["victim", "--image", `${reg.addr}/slow:1`, "--", "true"]);
        await reg.slow.requested;
        await c.ctr(["tasks", "kill", "-s", "KILL", "victim"]);
        await poll(
          "the victim to stop",
          async () =>
            (await taskStatus(c, "default", "victim"))?.status === "STOPPED" ? true : null,
        );
        reg.slow.release();
        refused(await run, /^dbg: victim stopped while dbg prepared the session$/m);
      });
    } finally {
      await reg.stop();
      await c.stop();
    }
  },
});
