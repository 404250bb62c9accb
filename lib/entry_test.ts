import assert from "node:assert/strict";
import { shSyntaxError } from "../tests/helpers/busybox_sh.ts";
import { ENTRY_SCRIPT } from "./entry.ts";

Deno.test("ENTRY_SCRIPT is valid POSIX sh for BusyBox", async () => {
  const err = await shSyntaxError(ENTRY_SCRIPT);
  assert.ok(!err, err ?? "");
});

Deno.test("ENTRY_SCRIPT reads every DBG_* setting the plan sets", () => {
  const vars = ["MODE", "FALLBACK", "PROFILE", "PID", "TARGET_ID", "WORKDIR", "IMAGE", "SHELL"];
  const more = ["TOOLS", "USER", "NIX", "QUIET", "PRIVILEGED", "TTY", "BANNER", "ROOT_PATH"];
  for (const v of [...vars, ...more, "TARGET_PATH", "NENV", "WORKDIR_FLAG"]) {
    assert.match(ENTRY_SCRIPT, new RegExp(`\\$\\{?DBG_${v}\\b`), v);
  }
});
