/**
 * End-to-end tests of `dbg docker` without a TTY, against a private dockerd: commands, exit
 * codes, streams, users and profiles, target kinds, modes, and every user error. The TTY path
 * and signals are in docker_tty_test.ts, debugger images and pulls in docker_images_test.ts.
 */

import assert from "node:assert/strict";
import { dbgArgv, dbgDocker, runDbg, runDbgAsNobody, spawnDbg } from "../helpers/dbg.ts";
import { cleanEnv, dockerdOrSkip, sh } from "../helpers/dockerd.ts";
import {
  diffTarget,
  loadTestImages,
  NIXERY_IMAGE,
  runTarget,
  sidecarsLeft,
  TARGET_IMAGE,
} from "../helpers/images.ts";
import { accessScenarios, APP_TARGETS } from "./_access.ts";
import { killSoak, signalSoak } from "./_soak.ts";
import { poll } from "../helpers/tty.ts";

const TARGETS = [
  "app",
  "app-nonroot",
  "app-ro",
  "app-hostpid",
  "app-ipc",
  "app-drop",
  "app-drop-in-place",
  "app-user101",
  "app-nonroot-ro",
  "app-hostnet",
];

Deno.test({
  name: "dbg docker end to end (private dockerd)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const d = await dockerdOrSkip();
    if (!d) return;
    const dbg = (args: string[], stdin?: string) => dbgDocker(d.host, args, { stdin });
    try {
      await loadTestImages(d);
      await runTarget(d, { name: "app" });
      await runTarget(d, { name: "app-nonroot", user: "1000:1000" });
      await runTarget(d, { name: "app-ro", readOnly: true });
      await runTarget(d, { name: "app-hostpid", pidHost: true });
      await runTarget(d, { name: "app-ipc", ipcShareable: true });
      await runTarget(d, { name: "app-drop", args: ["/app/target", "--drop", "1000:1000"] });
      await runTarget(d, {
        name: "app-drop-in-place",
        args: ["/app/target", "--drop-in-place", "1000:1000"],
      });
      const tmp = (await d.docker(["create", TARGET_IMAGE])).stdout.trim();
      await d.docker(["commit", "--change", "USER 101:101", tmp, "dbg-test/target:user101"]);
      await d.docker(["rm", tmp]);
      await runTarget(d, { name: "app-user101", image: "dbg-test/target:user101" });
      await runTarget(d, { name: "app-nonroot-ro", user: "1000:1000", readOnly: true });
      await runTarget(d, { name: "app-hostnet", pidHost: true, network: "host" });
      await runTarget(d, { name: "app-peek", args: ["/app/target", "--peek"] });

      await accessScenarios(t, dbg, APP_TARGETS);

      await t.step(
        "a command sees the target's rootfs as / and its exit code is dbg's",
        async () => {
          const r = await dbg(["app", "--", "cat", "/etc/os-release"]);
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stdout, /ID=dbgtest/);
          assert.match(r.stderr, /chroot mode \(busybox:musl has static tools\)/);
        },
      );

      await t.step("stdout and stderr stay apart; exit codes 0, 1, 42 pass through", async () => {
        const r = await dbg(["-q", "app", "--", "sh", "-c", "echo out; echo err >&2; exit 42"]);
        assert.equal(r.code, 42);
        assert.equal(r.stdout, "out\n");
        assert.equal(r.stderr, "err\n");
        assert.equal((await dbg(["-q", "app", "--", "true"])).code, 0);
        assert.equal((await dbg(["-q", "app", "--", "false"])).code, 1);
      });

      await t.step("a command killed by a signal exits 128+n", async () => {
        const r = await dbg(["-q", "app", "--", "sh", "-c", "kill -TERM $$"]);
        assert.equal(r.code, 143);
      });

      await t.step("argv survives exactly: spaces, quotes, $ and empty args", async () => {
        const args = ["a b", '"q"', "$HOME", "", "it's", "-x"];
        const r = await dbg(["-q", "app", "--", "printf", "%s|", ...args]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, args.map((a) => `${a}|`).join(""));
      });

      await t.step("piped stdin reaches the command and ends with EOF", async () => {
        const r = await dbg(["-q", "app", "-i", "--", "cat"], "hi\nthere\n");
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "hi\nthere\n");
        const script = await dbg(["-q", "app"], "ls /; exit 3\n");
        assert.equal(script.code, 3);
        assert.match(script.stdout, /marker\.txt/);
      });

      await t.step(
        "the shell has the target's env and cwd, the tools' PATH; -e and -w apply",
        async () => {
          const echo = ["--", "sh", "-c", 'echo "$TARGET_MARKER|$PATH"; pwd'];
          const r = await dbg(["-q", "app", ...echo]);
          const [env, cwd] = r.stdout.trim().split("\n");
          assert.match(env, /^from-target-env\|\/proc\/\d+\/root\/bin$/);
          assert.equal(cwd, "/app");
          const both = await dbg(["-q", "--target-path", "app", ...echo]);
          assert.match(
            both.stdout,
            /\|\/proc\/\d+\/root\/bin:\/usr\/local\/bin:\/usr\/bin:\/app\n/,
          );
          const e = await dbg([
            "-q",
            "app",
            "-e",
            "FOO=a b",
            "-w",
            "/etc",
            "--",
            "sh",
            "-c",
            'echo "$FOO"; pwd',
          ]);
          assert.equal(e.stdout, "a b\n/etc\n");
          // A path with .. is resolved inside the target's root; a missing one fails, as with
          // docker exec -w.
          const dots = await dbg(["-q", "app", "-w", "/usr/../app/..", "--", "pwd"]);
          assert.equal(dots.stdout, "/\n", dots.stderr);
          const up = await dbg(["-q", "app", "-w", "/usr/bin/..", "--", "pwd"]);
          assert.equal(up.stdout, "/usr\n", up.stderr);
          const none = await dbg(["-q", "app", "-w", "/nope", "--", "pwd"]);
          assert.equal(none.code, 126);
          assert.equal(none.stdout, "");
          assert.equal(none.stderr, "dbg: -w /nope: no such directory in the target\n");
        },
      );

      await t.step("the target's loader and shell variables stay out of the session", async () => {
        await d.docker([
          ...["run", "-d", "--network", "none", "--name", "app-hostile"],
          ...["-e", "LD_PRELOAD=/nope.so", "-e", "IFS=1", "-e", "BASH_ENV=/x", "-e", "TMPDIR=/e"],
          ...["-e", "GCONV_PATH=/e", "-e", "KEPT=yes", TARGET_IMAGE],
        ]);
        const r = await dbg([
          ...["-q", "app-hostile", "-e", "A=1", "-e", "B=2", "--", "sh", "-c"],
          'echo "$A$B $KEPT"; env | grep -cE "^(LD_PRELOAD|IFS|BASH_ENV|TMPDIR|GCONV_PATH)="; true',
        ]);
        assert.equal(r.stdout, "12 yes\n0\n", r.stderr);
        await d.docker(["rm", "-f", "app-hostile"]);
      });

      await t.step("target binaries and busybox tools both run", async () => {
        const r = await dbg(["-q", "app", "--", "sh", "-c", "/usr/bin/hello; ls /"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /hello from target/);
        assert.match(r.stdout, /marker\.txt/);
      });

      await t.step("-u runs the command as a user of the target (name or uid)", async () => {
        assert.equal((await dbg(["-q", "app", "--", "id", "-u"])).stdout, "0\n");
        const byName = await dbg([
          "-q",
          "app",
          "-u",
          "app",
          "--",
          "sh",
          "-c",
          "id -u; id -g; ls /",
        ]);
        assert.equal(byName.code, 0, byName.stderr);
        assert.match(byName.stdout, /^1000\n1000\n/);
        assert.equal(
          (await dbg(["-q", "app", "-u", "1000:1000", "--", "id", "-u"])).stdout,
          "1000\n",
        );
        const plain = await dbg(["-q", "app", "--mode", "plain", "-u", "4242", "--", "id", "-u"]);
        assert.equal(plain.stdout, "4242\n", plain.stderr);
      });

      await t.step(
        "non-root, read-only, host-PID, host-network and shareable-IPC targets work",
        async () => {
          for (const name of ["app-nonroot", "app-ro", "app-hostpid", "app-ipc", "app-hostnet"]) {
            const r = await dbg(["-q", name, "--", "sh", "-c", "cat /marker.txt; /usr/bin/hello"]);
            assert.equal(r.code, 0, `${name}: ${r.stderr}`);
            assert.equal(r.stdout, "target-rootfs-marker\nhello from target\n", name);
          }
          const ipc = await dbg(["app-ipc", "--dry-run"]);
          assert.equal(JSON.parse(ipc.stdout).sidecar.join.ipc, true);
          const priv = await dbg(["app", "--dry-run"]);
          assert.equal(JSON.parse(priv.stdout).sidecar.join.ipc, false);
        },
      );

      await t.step("a target in another container's PID namespace is found by cgroup", async () => {
        // app-shared is not PID 1 in the namespace it joins (app is): dbg must find its process.
        await d.docker([
          "run",
          "-d",
          "--network",
          "none",
          "--pid",
          "container:app",
          "--name",
          "app-shared",
          NIXERY_IMAGE,
          "sh",
          "-c",
          "echo shared-target > /tmp/which; exec sleep 1000",
        ]);
        const plan = JSON.parse((await dbg(["app-shared", "--dry-run"])).stdout);
        assert.equal(plan.target.pid, 0, "the PID is found inside the sidecar");
        const r = await dbg(["-q", "app-shared", "--", "cat", "/tmp/which"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "shared-target\n");
        await d.docker(["rm", "-f", "app-shared"]);
      });

      await t.step(
        "general adds SYS_PTRACE to any target, baseline nothing; netadmin reaches the network",
        async () => {
          for (const name of ["app", "app-nonroot"]) {
            const plan = JSON.parse((await dbg([name, "--dry-run"])).stdout);
            assert.deepEqual(plan.sidecar.capAdd, ["SYS_PTRACE"], name);
            assert.equal(plan.sidecar.privileged, false);
          }
          const base = JSON.parse(
            (await dbg(["--profile", "baseline", "app", "--dry-run"])).stdout,
          );
          assert.deepEqual(base.sidecar.capAdd, []);
          const netPlan = (await dbg(["--profile", "netadmin", "app", "--dry-run"])).stdout;
          assert.deepEqual(JSON.parse(netPlan).sidecar.capAdd, [
            "SYS_PTRACE",
            "NET_ADMIN",
            "NET_RAW",
          ]);
          const sysPlan = (await dbg(["--profile", "sysadmin", "app", "--dry-run"])).stdout;
          assert.equal(JSON.parse(sysPlan).sidecar.privileged, true);
          // A link change takes NET_ADMIN even when it changes nothing (lo's MTU is 65536).
          const up = ["app", "--", "ip", "link", "set", "lo", "mtu", "65536"];
          const net = await dbg(["-q", "--profile", "netadmin", ...up]);
          assert.equal(net.code, 0, net.stderr);
          const general = await dbg(["-q", ...up]);
          assert.notEqual(general.code, 0, `${general.stdout}${general.stderr}`);
          assert.match(general.stderr, /Operation not permitted/);
          // (sysadmin is --privileged, which this sandbox's dockerd cannot start: its root lacks
          // CAP_SYS_RESOURCE.)
        },
      );

      await t.step("--dry-run prints the plan and creates nothing", async () => {
        // (The sidecars of the steps before are removed by the daemon once they end, which
        // may still be under way.)
        const sidecars = async () =>
          (await d.docker(["ps", "-aq", "--filter", "label=dbg.session"])).stdout;
        const before = await poll("earlier sidecars removed", async () => {
          const ids = await sidecars();
          return ids === "" ? ids : null;
        });
        const r = await dbg(["app", "--dry-run", "--", "ls", "/"]);
        assert.equal(r.code, 0, r.stderr);
        const plan = JSON.parse(r.stdout);
        assert.equal(plan.mode, "chroot");
        assert.equal(plan.image.ref, "busybox:musl");
        assert.deepEqual(plan.command, ["ls", "/"]);
        assert.equal(await sidecars(), before);
      });

      await t.step("plain and mount modes reach the target's filesystem", async () => {
        const plain = await dbg([
          "app",
          "--mode",
          "plain",
          "--",
          "sh",
          "-c",
          'cat "$DBG_TARGET_ROOT/marker.txt"; ls /',
        ]);
        assert.equal(plain.code, 0, plain.stderr);
        assert.match(plain.stdout, /^target-rootfs-marker\n/);
        assert.doesNotMatch(plain.stdout, /marker\.txt/);
        assert.match(plain.stderr, /plain mode/);
        const mount = await dbg([
          "-q",
          "app-ro",
          "--mode",
          "mount",
          "--",
          "cat",
          "/marker.txt",
        ]);
        assert.equal(mount.code, 0, mount.stderr);
        assert.equal(mount.stdout, "target-rootfs-marker\n");
        const asUser = await dbg([
          "-q",
          "app-ro",
          "--mode",
          "mount",
          "-u",
          "4242:4242",
          "-w",
          "/usr/bin",
          "--",
          "sh",
          "-c",
          "cat /marker.txt; id -u; pwd",
        ]);
        assert.equal(asUser.code, 0, asUser.stderr);
        assert.equal(asUser.stdout, "target-rootfs-marker\n4242\n/usr/bin\n");
        const plan = JSON.parse((await dbg(["app", "--mode", "mount", "--dry-run"])).stdout);
        assert.deepEqual(plan.sidecar.capAdd, ["SYS_PTRACE", "SYS_ADMIN"]);
      });

      await t.step(
        "user errors: no such container, paused target, bad flags, no socket",
        async () => {
          const none = await dbg(["nope"]);
          assert.equal(none.code, 125);
          assert.match(none.stderr, /^dbg: No such container: nope \(running: .*app.*\)\nHint: /);
          // (A stopped container is debugged through a copy: docker_copy_test.ts.)
          await runTarget(d, { name: "paused" });
          await d.docker(["pause", "paused"]);
          const paused = await dbg(["paused"]);
          assert.equal(paused.code, 125);
          assert.match(paused.stderr, /Target paused is not running \(state: paused\)/);
          assert.match(paused.stderr, /Hint: Start it first \(docker unpause paused\)/);
          await d.docker(["rm", "-f", "paused"]);
          const flag = await dbg(["app", "--bogus"]);
          assert.equal(flag.code, 125);
          assert.match(flag.stderr, /^dbg: Unknown option '--bogus'/);
          const mode = await dbg(["app", "--mode", "weird"]);
          assert.equal(mode.code, 125);
          const env = await dbg(["app", "-e", "1BAD"]);
          assert.match(env.stderr, /Bad --env "1BAD": expected NAME=VALUE/);
          const tty = await dbg(["app", "-t"]);
          assert.match(tty.stderr, /The input device is not a TTY/);
          const sock = await runDbg(["docker", "-H", "unix:///tmp/dbg-no-such.sock", "app"]);
          assert.equal(sock.code, 125);
          assert.match(
            sock.stderr,
            /^dbg: Cannot connect to the Docker daemon at unix:\/\/\/tmp\/dbg-no-such\.sock/,
          );
          assert.match(sock.stderr, /\nHint: /);
          const rt = await runDbg(["nerdctl", "app"]);
          assert.equal(rt.code, 125);
          assert.match(rt.stderr, /Runtimes: docker/);
        },
      );

      await t.step("--name names the sidecar and --keep leaves it for inspection", async () => {
        const r = await dbg(["-q", "app", "--name", "dbg-kept", "--keep", "--", "true"]);
        assert.equal(r.code, 0, r.stderr);
        const labels = await d.docker(["inspect", "-f", "{{json .Config.Labels}}", "dbg-kept"]);
        assert.equal(
          JSON.parse(labels.stdout)["dbg.target"],
          (await d.docker(["inspect", "-f", "{{.Id}}", "app"])).stdout.trim(),
        );
        const again = await dbg(["-q", "app", "--name", "dbg-kept", "--", "true"]);
        assert.equal(again.code, 125);
        assert.match(again.stderr, /^dbg: Cannot create sidecar dbg-kept: the name is in use\n/);
        // The name of someone's container: dbg never suggests removing it.
        const clash = await dbg(["-q", "app", "--name", "app-ro", "--", "true"]);
        assert.equal(clash.code, 125);
        assert.doesNotMatch(clash.stderr, /rm|remove/);
        await d.docker(["rm", "-f", "dbg-kept"]);
      });

      await t.step("permission denied on the socket is one line telling to use sudo", async () => {
        const out = await runDbgAsNobody(["docker", "-H", d.host, "app"]);
        assert.equal(out.code, 125, out.stderr);
        assert.match(
          out.stderr,
          /^dbg: Cannot connect to the Docker daemon at .*: permission denied\nHint: .*sudo/,
        );
      });

      await t.step(
        "the target resolves by id, id prefix and /name; commands not found exit 127/126",
        async () => {
          const id = (await d.docker(["inspect", "-f", "{{.Id}}", "app"])).stdout.trim();
          for (const ref of [id, id.slice(0, 7), "/app"]) {
            const r = await dbg(["-q", ref, "--", "cat", "/marker.txt"]);
            assert.equal(r.stdout, "target-rootfs-marker\n", r.stderr);
          }
          // An id prefix several containers share lists them (make one such prefix).
          const ids = async () => (await d.docker(["ps", "-aq", "--no-trunc"])).stdout.split("\n");
          let shared: string | undefined;
          for (let n = 0; !shared; n++) {
            const firsts = (await ids()).map((i) => i[0]).filter(Boolean);
            shared = firsts.find((c, i) => firsts.indexOf(c) !== i);
            if (!shared) await d.docker(["create", "--name", `app-prefix-${n}`, TARGET_IMAGE]);
          }
          const ambiguous = await dbg([shared, "--", "true"]);
          assert.equal(ambiguous.code, 125);
          assert.match(
            ambiguous.stderr,
            new RegExp(`^dbg: ${shared} matches \\d+ containers: ${shared}\\w{11} \\(`),
          );
          const missing = await dbg(["-q", "app", "--", "no-such-command"]);
          assert.equal(missing.code, 127);
          assert.equal(missing.stderr, "dbg: no-such-command: executable file not found in PATH\n");
          // A program of the target's that the tools lack: where it is, and how to run it.
          const plant = await dbg(["-q", "app", "--", "curl"]);
          assert.equal(plant.code, 127);
          assert.equal(
            plant.stderr,
            "dbg: curl: not among the debugger's tools; the target has /usr/local/bin/curl: " +
              "run it by its path, or pass --target-path\n",
          );
          const notExec = await dbg(["-q", "app", "--", "/etc/os-release"]);
          assert.equal(notExec.code, 126);
          assert.equal(notExec.stderr, "dbg: /etc/os-release: not an executable file\n");
        },
      );

      await t.step(
        "DOCKER_HOST with tcp:// works (through a loopback relay to the socket)",
        async () => {
          const relay = tcpRelay(d.socket);
          try {
            const r = await runDbg([
              "docker",
              "-q",
              "app",
              "-i",
              "--",
              "sh",
              "-c",
              "cat; cat /marker.txt",
            ], {
              env: { DOCKER_HOST: `tcp://127.0.0.1:${relay.port}` },
              stdin: "via tcp\n",
            });
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.stdout, "via tcp\ntarget-rootfs-marker\n");
          } finally {
            relay.close();
          }
        },
      );

      await t.step(
        "a working dir the target chose is shown without control characters",
        async () => {
          await runTarget(d, {
            name: "app-cwd",
            workdir: "/w\u001b]0;pwned\u0007",
            args: ["/app/target", "--rm-cwd"],
          });
          try {
            const r = await dbg(["app-cwd", "--", "pwd"]);
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.stdout, "/\n");
            assert.match(
              r.stderr,
              /^dbg: cannot enter \(a path with control characters\) in the target; starting in \/$/m,
            );
            const raw = [...r.stderr].filter((ch) => ch < " " && ch !== "\n");
            assert.deepEqual(raw, []);
          } finally {
            await d.docker(["rm", "-f", "app-cwd"]);
          }
        },
      );

      await t.step("the target's env and -e cannot steer the entry script", async () => {
        // Names the entry script uses for its own state, and a value with a newline.
        await d.docker([
          "run",
          "-d",
          "--network",
          "none",
          "--name",
          "app-env",
          "-e",
          "K=1",
          "-e",
          "KU=1",
          "-e",
          "uid=0",
          "-e",
          "gid=0",
          "-e",
          "mode=plain",
          "-e",
          "R=/",
          "-e",
          "MULTI=line1\nline2",
          // Names no shell can export, and prompts a shell would run as code.
          "-e",
          "spring.profiles.active=dev",
          "-e",
          "PS2=$(touch /tmp/pwned)",
          "-e",
          "ENV=/tmp/evil",
          "dbg-test/target:latest",
        ]);
        const r = await dbg([
          "-q",
          "app-env",
          "-u",
          "app",
          "-e",
          "C=1",
          "-e",
          "IFS=:",
          "--",
          "sh",
          "-c",
          'id -u; cat /marker.txt; printf "%s|" "$MULTI" "$K" "$PS2" "${ENV-unset}"',
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "1000\ntarget-rootfs-marker\nline1\nline2|1|> |unset|");
        const state = await d.docker(["inspect", "-f", "{{.State.Running}}", "app-env"]);
        assert.equal(state.stdout.trim(), "true", "the target's PID 1 must survive");
        await d.docker(["rm", "-f", "app-env"]);
      });

      await t.step(
        "a command that starts with - or is missing, with -u too, exits 127",
        async () => {
          assert.equal((await dbg(["-q", "app", "--", "-x"])).code, 127);
          assert.equal((await dbg(["-q", "app", "-u", "app", "--", "no-such-command"])).code, 127);
          const args = await dbg([
            "-q",
            "app",
            "-u",
            "app",
            "--",
            "printf",
            "%s|",
            "-n",
            "a b",
            "",
          ]);
          assert.equal(args.stdout, "-n|a b||");
        },
      );

      await t.step("a reader that goes away (| head) ends the session like SIGPIPE", async () => {
        const dbgCmd = dbgArgv(["docker", "-H", d.host])
          .join(" ");
        const r = await sh([
          "bash",
          "-c",
          `${dbgCmd} -q app -- sh -c 'while :; do echo y; done' | head -c 4; echo " \${PIPESTATUS[0]}"`,
        ], {
          env: cleanEnv({ NO_COLOR: "1" }),
          check: false,
        });
        assert.equal(r.stdout, "y\ny\n 141\n", r.stderr);
        assert.equal(r.stderr, "");
        // With --debug into the same pipe, the pipe closes under dbg's own lines: the session
        // ends as on SIGPIPE all the same, at once, and leaves no sidecar.
        const t0 = Date.now();
        const debug = await sh([
          "bash",
          "-c",
          `${dbgCmd} --debug -q app -- sleep 20 2>&1 | head -n 3 >/dev/null; echo "\${PIPESTATUS[0]}"`,
        ], { env: cleanEnv({ NO_COLOR: "1" }), check: false });
        assert.equal(debug.stdout, "141\n", debug.stderr);
        assert.ok(Date.now() - t0 < 15_000, "dbg did not wait for the command");
        assert.deepEqual(await sidecarsLeft(d), []);
      });

      await signalSoak(t, {
        spawn: (args) => spawnDbg(["docker", "-H", d.host, ...args]),
        target: "app-drop",
        hostPid: Number((await d.docker(["inspect", "-f", "{{.State.Pid}}", "app-drop"])).stdout),
        leftovers: () => sidecarsLeft(d),
        written: () => diffTarget(d, "app-drop"),
      });

      await t.step("no leftovers: no sidecars, no change in any target", async () => {
        assert.deepEqual(await sidecarsLeft(d), []);
        for (const name of TARGETS) assert.equal(await diffTarget(d, name), "", name);
      });

      // Last: what a killed dbg leaves (a sidecar created and never started) is gc's.
      await killSoak(t, {
        spawn: (args) => spawnDbg(["docker", "-H", d.host, ...args]),
        argv: (args) => dbgArgv(["docker", "-H", d.host, ...args]),
        target: "app-drop",
        hostPid: Number((await d.docker(["inspect", "-f", "{{.State.Pid}}", "app-drop"])).stdout),
        written: () => diffTarget(d, "app-drop"),
        gc: async () => {
          const gc = await runDbg(["gc"], { env: { DOCKER_HOST: d.host } });
          assert.equal(gc.code, 0, gc.stderr);
          return await sidecarsLeft(d);
        },
      });
    } finally {
      await d.stop();
    }
  },
});

/**
 * A TCP listener on 127.0.0.1 that relays each connection to the daemon's Unix socket, so the
 * tcp:// transport is tested against the real daemon. It only copies bytes, half-closes as its
 * peers do, and closes both sides when both directions are done.
 */
function tcpRelay(socket: string): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const copy = async (from: Deno.Conn, to: Deno.TcpConn | Deno.UnixConn) => {
    const buf = new Uint8Array(64 * 1024);
    for (
      let n = await from.read(buf).catch(() => null);
      n !== null;
      n = await from.read(buf).catch(() => null)
    ) {
      for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
    }
    await to.closeWrite().catch(() => {});
  };
  const closeQuietly = (c: Deno.Conn) => {
    open.delete(c);
    try {
      c.close();
    } catch { /* already closed */ }
  };
  (async () => {
    for await (const c of listener) {
      const u = await Deno.connect({ transport: "unix", path: socket });
      open.add(c).add(u);
      Promise.all([copy(c, u), copy(u, c)]).catch(() => {}).finally(() => {
        closeQuietly(c);
        closeQuietly(u);
      });
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      listener.close();
      for (const c of [...open]) closeQuietly(c);
    },
  };
}
