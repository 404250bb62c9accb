import assert from "node:assert/strict";
import { shSyntaxError } from "../tests/helpers/busybox_sh.ts";
import { hangupScript, killScript, lifelineScript } from "./kill.ts";

Deno.test("killScript() and hangupScript() are valid POSIX sh for BusyBox", async () => {
  for (
    const script of [
      killScript("TERM", false),
      killScript("KILL", true),
      hangupScript(),
      lifelineScript(),
    ]
  ) {
    const err = await shSyntaxError(script);
    assert.ok(!err, err ?? "");
  }
});

Deno.test("hangupScript() hangs up the entry shell at once, then leaves first", () => {
  const s = hangupScript();
  assert.match(s, /session; \[ -z "\$E" \] \|\| kill -HUP "\$E"/);
  assert.match(s, /case "\$rest " in \*":\$\{_x%%:\*\} "\*\) ;; \*\) kill -HUP/);
});

Deno.test("the scripts' waits and scans fork nothing but sleep (no pipe, no $(...))", () => {
  for (const script of [killScript("KILL", true), hangupScript(), lifelineScript()]) {
    assert.doesNotMatch(script, /\$\((?!\()|\|\s*(awk|grep|cat)|`/);
  }
});

Deno.test("killScript() signals the entry shell only, or all with `all`", () => {
  assert.match(killScript("STOP", false), /^session\n\[ -z "\$E" \] \|\| kill -STOP "\$E"/m);
  assert.match(killScript("KILL", true), /^for _x in \$S; do kill -KILL "\$\{_x%%:\*\}"/m);
});
