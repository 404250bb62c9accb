import assert from "node:assert/strict";
import { ENTRY_SCRIPT } from "./entry.ts";

Deno.test("ENTRY_SCRIPT is valid POSIX sh for BusyBox", async () => {
  const busybox = "/bin/busybox";
  try {
    await Deno.stat(busybox);
  } catch {
    if (Deno.env.get("CI") === "true") throw new Error("busybox-static is missing");
    return;
  }
  const out = await new Deno.Command(busybox, {
    args: ["sh", "-n", "-c", ENTRY_SCRIPT],
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
});

Deno.test("ENTRY_SCRIPT reads every DBG_* setting the plan sets", () => {
  for (const v of ["MODE", "PID", "TARGET_ID", "WORKDIR", "SHELL", "TOOLS", "USER", "NIX"]) {
    assert.match(ENTRY_SCRIPT, new RegExp(`\\$DBG_${v}\\b`), v);
  }
});
