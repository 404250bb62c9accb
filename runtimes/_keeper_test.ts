import assert from "node:assert/strict";
import { keeperArch, keeperElf } from "./_keeper.ts";

/**
 * The keeper runs here natively, and through qemu-user for the other architecture (.ci/run
 * installs it): it must ignore SIGCHLD, then sleep until killed.
 */
Deno.test("keeperElf() makes a program that ignores SIGCHLD and sleeps, on amd64 and arm64", async () => {
  const native = keeperArch(Deno.build.arch)!;
  const dir = await Deno.makeTempDir({ prefix: "dbg-keeper-" });
  try {
    for (const arch of ["amd64", "arm64"] as const) {
      const file = `${dir}/keeper-${arch}`;
      await Deno.writeFile(file, keeperElf(arch), { mode: 0o755 });
      const qemu = `/usr/bin/qemu-${arch === "amd64" ? "x86_64" : "aarch64"}`;
      if (arch !== native && !await Deno.stat(qemu).catch(() => null)) {
        if (Deno.env.get("CI") === "true") {
          assert.fail(`${qemu} is missing (apt-get install qemu-user)`);
        }
        console.warn(`skipping the ${arch} keeper: no ${qemu}`);
        continue;
      }
      const argv = arch === native ? [file] : [qemu, "-strace", file];
      const p = new Deno.Command(argv[0], { args: argv.slice(1), stdout: "null", stderr: "piped" })
        .spawn();
      // Wait (10 s at most: qemu may start slowly on a busy machine) until the keeper has made
      // its one call, then check that it still sleeps.
      const deadline = Date.now() + 10_000;
      let seen = "";
      if (arch === native) {
        while (Date.now() < deadline) {
          const status = await Deno.readTextFile(`/proc/${p.pid}/status`);
          const ignored = BigInt(`0x${status.match(/^SigIgn:\s*(\S+)/m)![1]}`);
          if ((ignored >> 16n) & 1n) {
            seen = status;
            break;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(seen, "SIGCHLD (17) is ignored");
      } else {
        const reader = p.stderr.pipeThrough(new TextDecoderStream()).getReader();
        const timer = setTimeout(() => reader.cancel(), deadline - Date.now());
        const call = /rt_sigaction\(SIGCHLD,0x[0-9a-f]+,NULL\) = 0/;
        for (let c = await reader.read(); !c.done; c = await reader.read()) {
          seen += c.value;
          if (call.test(seen)) break;
        }
        clearTimeout(timer);
        assert.match(seen, call);
        reader.releaseLock();
      }
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(
        !(await Deno.readTextFile(`/proc/${p.pid}/stat`)).includes(") Z"),
        `${arch}: the keeper sleeps`,
      );
      p.kill("SIGKILL");
      const { signal } = await p.status;
      assert.equal(signal, "SIGKILL", `${arch}: the keeper ran until killed`);
      await p.stderr.cancel().catch(() => {});
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keeperArch() knows Go's and uname's names", () => {
  assert.equal(keeperArch("x86_64"), "amd64");
  assert.equal(keeperArch("arm64"), "arm64");
  assert.equal(keeperArch("s390x"), undefined);
});
