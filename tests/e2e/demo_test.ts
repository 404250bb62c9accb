/**
 * The README's first command, scripts/demo.sh, as a new user runs it without a terminal: it finds
 * (or installs) what it needs, runs the demo target on a Docker of its own, runs dbg on it, and
 * cleans up.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cleanEnv, sh } from "../helpers/dockerd.ts";

const DEMO = new URL("../../scripts/demo.sh", import.meta.url).pathname;

Deno.test({
  name: "scripts/demo.sh runs dbg on a shell-less target and leaves nothing",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    if (Deno.uid() !== 0) {
      if (Deno.env.get("CI") === "true") throw new Error("the demo test needs root");
      console.warn("skipped: the demo starts a private dockerd, which needs root");
      return;
    }
    const r = await sh([DEMO], { env: cleanEnv({ NO_COLOR: "1" }), check: false });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^ID=dbgdemo$/m);
    assert.match(r.stderr, /^demo: removed target dbg-demo-/m);
  },
});
