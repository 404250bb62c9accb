import assert from "node:assert/strict";
import { type Answer, decide, type Place, shellWords } from "./detect.ts";
import { DbgError, EngineUnreachable, noSuchTarget, targetNotRunning } from "./errors.ts";

const docker: Place = { runtime: "docker", where: "unix:///var/run/docker.sock", flags: [] };
const podman: Place = {
  runtime: "podman",
  where: "unix:///run/podman/podman.sock",
  flags: ["-H", "unix:///run/podman/podman.sock"],
};
const ctrd: Place = { runtime: "containerd", where: "/run/containerd/containerd.sock", flags: [] };
const absent = (place: Place): Answer<string> => ({
  place,
  error: noSuchTarget("app", [], "x ps"),
});
const down = (place: Place): Answer<string> => ({
  place,
  error: new EngineUnreachable("Cannot connect", "no such socket", { hint: "start it" }),
});
const failure = (answers: Answer<string>[], argv = ["app"]): DbgError => {
  try {
    decide("app", answers, argv);
  } catch (e) {
    assert.ok(e instanceof DbgError);
    return e;
  }
  throw new Error("decide() did not throw");
};

Deno.test("decide() takes the one match, and one container seen twice is one", () => {
  const found = { place: docker, found: "facts", id: "abc" };
  assert.equal(decide("app", [found, absent(podman), down(ctrd)], ["app"]).place, docker);
  const twice = { place: ctrd, found: "same", id: "abc" };
  assert.equal(decide("app", [found, absent(podman), twice], ["app"]).found, "facts");
});

Deno.test("decide(): several matches give the exact command for each", () => {
  const e = failure([
    { place: docker, found: "a", id: "1" },
    { place: podman, found: "b", id: "2" },
  ], ["-q", "app", "--", "sh", "-c", "echo it's"]);
  assert.equal(
    e.message,
    "app is on 2 engines: docker (unix:///var/run/docker.sock), podman (unix:///run/podman/podman.sock)",
  );
  assert.equal(
    e.hint,
    "Name the runtime: dbg docker -q app -- sh -c 'echo it'\\''s'  or  " +
      "dbg podman -H unix:///run/podman/podman.sock -q app -- sh -c 'echo it'\\''s'",
  );
});

Deno.test("decide(): no match is one line that says where dbg looked", () => {
  const e = failure([absent(docker), down(podman), absent(ctrd)]);
  assert.equal(
    e.message,
    "No container app on docker (unix:///var/run/docker.sock), " +
      "podman (unix:///run/podman/podman.sock: no such socket), " +
      "containerd (/run/containerd/containerd.sock)",
  );
  assert.match(
    e.hint!,
    /^List containers with: docker ps, ctr tasks ls\. Runtimes: docker, podman, containerd, k8s$/,
  );
  const none = failure([down(docker), down(podman)]);
  assert.match(none.message, /^No engine to look for app in: docker \(unix:.*: no such socket\), /);
  assert.match(none.hint!, /^Start one, or point dbg at it: DOCKER_HOST, .*\. Runtimes: docker,/);
});

Deno.test("decide(): the one engine that has the target but cannot debug it says why", () => {
  const paused = targetNotRunning("app", "paused", "docker unpause app");
  assert.equal(failure([{ place: docker, error: paused }, absent(podman)]), paused);
});

Deno.test("shellWords() quotes only what a shell would split or expand", () => {
  assert.equal(shellWords(["a", "b c", "$x", "--env=A=1", ""]), "a 'b c' '$x' --env=A=1 ''");
});
