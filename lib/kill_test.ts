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

Deno.test("hangupScript() hangs up leaves first and the entry shell (PPid 0) at once", () => {
  const s = hangupScript();
  assert.match(s, /kill -HUP \$\(session \| awk '\$2 == 0 \{ print \$1 \}'\)/);
  assert.match(s, /for \(x in p\) if \(!\(x in pp\)\) print x/);
});
