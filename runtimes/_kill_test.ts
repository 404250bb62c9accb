import assert from "node:assert/strict";
import { hangupScript, killScript } from "./_kill.ts";

Deno.test("killScript() and hangupScript() are valid POSIX sh for BusyBox", async () => {
  const busybox = "/bin/busybox";
  try {
    await Deno.stat(busybox);
  } catch {
    if (Deno.env.get("CI") === "true") throw new Error("busybox-static is missing");
    return;
  }
  for (const script of [killScript("TERM", false), killScript("KILL", true), hangupScript()]) {
    const out = await new Deno.Command(busybox, {
      args: ["sh", "-n", "-c", script],
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  }
});

Deno.test("hangupScript() hangs up leaves first and the entry shell (PPid 0) at once", () => {
  const s = hangupScript();
  assert.match(s, /kill -HUP \$\(session \| awk '\$2 == 0 \{ print \$1 \}'\)/);
  assert.match(s, /for \(x in p\) if \(!\(x in pp\)\) print x/);
});
