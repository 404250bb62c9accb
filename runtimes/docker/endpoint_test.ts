import assert from "node:assert/strict";
import { DbgError } from "../../lib/errors.ts";
import { cannotConnect, describe, parseDockerHost, resolveEndpoint } from "./endpoint.ts";
import { DOCKER, PODMAN, resolvePodman } from "./engine.ts";

const REMOTE_HASH = "b71199ebd070b36beab7317920c2c2f1d777df8d05e5527d8458fda57cb17a7a"; // sha256("remote")

function envOf(vars: Record<string, string>): (k: string) => string | undefined {
  return (k) => vars[k];
}

/** A temp HOME with ~/.docker/config.json and optional contexts. */
async function fakeHome(
  config: unknown,
  contexts: Record<string, { hash: string; host: string; tls?: boolean }> = {},
): Promise<string> {
  const home = await Deno.makeTempDir({ prefix: "dbg-endpoint-" });
  await Deno.mkdir(`${home}/.docker`);
  if (config !== undefined) {
    await Deno.writeTextFile(
      `${home}/.docker/config.json`,
      typeof config === "string" ? config : JSON.stringify(config),
    );
  }
  for (const [name, c] of Object.entries(contexts)) {
    const dir = `${home}/.docker/contexts/meta/${c.hash}`;
    await Deno.mkdir(dir, { recursive: true });
    const meta = {
      Name: name,
      Metadata: {},
      Endpoints: { docker: { Host: c.host, SkipTLSVerify: false } },
    };
    await Deno.writeTextFile(`${dir}/meta.json`, JSON.stringify(meta));
    if (c.tls) {
      await Deno.mkdir(`${home}/.docker/contexts/tls/${c.hash}/docker`, { recursive: true });
    }
  }
  return home;
}

Deno.test("resolveEndpoint() prefers -H over DOCKER_HOST", async () => {
  const r = await resolveEndpoint({
    host: "unix:///flag.sock",
    env: envOf({ DOCKER_HOST: "unix:///env.sock" }),
    home: "/nonexistent",
  });
  assert.deepEqual(r, { endpoint: { kind: "unix", path: "/flag.sock" }, source: "-H/--host" });
});

Deno.test("resolveEndpoint() reads DOCKER_HOST before the docker context", async () => {
  const home = await fakeHome({ currentContext: "remote" }, {
    remote: { hash: REMOTE_HASH, host: "unix:///ctx.sock" },
  });
  try {
    const r = await resolveEndpoint({ env: envOf({ DOCKER_HOST: "tcp://10.0.0.5:2375" }), home });
    assert.deepEqual(r.endpoint, { kind: "tcp", hostname: "10.0.0.5", port: 2375 });
    assert.equal(r.source, "DOCKER_HOST");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveEndpoint() refuses TLS when DOCKER_TLS_VERIFY is set", async () => {
  await assert.rejects(
    resolveEndpoint({
      env: envOf({ DOCKER_HOST: "tcp://h:2376", DOCKER_TLS_VERIFY: "1" }),
      home: "/nonexistent",
    }),
    (err: unknown) =>
      err instanceof DbgError &&
      err.message ===
        "TLS endpoints are not supported yet: tcp://h:2376 (from DOCKER_HOST, TLS is enabled)" &&
      err.hint!.includes("ssh -nNT -L"),
  );
});

Deno.test("resolveEndpoint() refuses ssh:// endpoints with a hint", async () => {
  await assert.rejects(
    resolveEndpoint({ host: "ssh://me@box", env: envOf({}) }),
    (err: unknown) =>
      err instanceof DbgError && err.message.startsWith("ssh endpoints are not supported yet") &&
      err.hint!.includes("-H unix:///tmp/docker.sock"),
  );
});

Deno.test("resolveEndpoint() uses DOCKER_CONTEXT and the sha256 meta path", async () => {
  const home = await fakeHome({ currentContext: "default" }, {
    remote: { hash: REMOTE_HASH, host: "unix:///run/remote.sock" },
  });
  try {
    const r = await resolveEndpoint({ env: envOf({ DOCKER_CONTEXT: "remote" }), home });
    assert.deepEqual(r.endpoint, { kind: "unix", path: "/run/remote.sock" });
    assert.equal(r.source, 'docker context "remote" (DOCKER_CONTEXT)');
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveEndpoint() uses currentContext from DOCKER_CONFIG", async () => {
  const home = await fakeHome({ currentContext: "my ctx" }, {
    "my ctx": {
      hash: "7dc32fcde6f5d4ed24a0b5709cca2382ed18f3d476abe19cd1355094c086edd8",
      host: "tcp://[::1]:2375",
    },
  });
  try {
    const r = await resolveEndpoint({
      env: envOf({ DOCKER_CONFIG: `${home}/.docker` }),
      home: "/nonexistent",
    });
    assert.deepEqual(r.endpoint, { kind: "tcp", hostname: "::1", port: 2375 });
    assert.match(r.source, /^docker context "my ctx" \(currentContext in .*config\.json\)$/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveEndpoint() refuses a tcp context with TLS material", async () => {
  const home = await fakeHome({ currentContext: "remote" }, {
    remote: { hash: REMOTE_HASH, host: "tcp://box:2376", tls: true },
  });
  try {
    await assert.rejects(
      resolveEndpoint({ env: envOf({}), home }),
      /TLS endpoints are not supported yet/,
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveEndpoint() says when the context does not exist", async () => {
  const home = await fakeHome({});
  try {
    await assert.rejects(
      resolveEndpoint({ env: envOf({ DOCKER_CONTEXT: "gone" }), home }),
      (err: unknown) =>
        err instanceof DbgError && err.message.startsWith("Docker context gone not found") &&
        err.hint!.includes("docker context ls"),
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("resolveEndpoint() falls back to the default socket", async () => {
  const def = { kind: "unix", path: "/var/run/docker.sock" };
  const none = await resolveEndpoint({ env: envOf({}), home: "/nonexistent" });
  assert.deepEqual(none, { endpoint: def, source: "default" });
  const home = await fakeHome({ currentContext: "default" });
  const broken = await fakeHome("{not json");
  try {
    const r = await resolveEndpoint({ env: envOf({}), home });
    assert.deepEqual(r.endpoint, def);
    assert.match(r.source, /^default \(docker context "default"/);
    const b = await resolveEndpoint({ env: envOf({ HOME: broken }) });
    assert.deepEqual(b.endpoint, def);
    assert.match(b.source, /config\.json ignored/);
  } finally {
    await Deno.remove(home, { recursive: true });
    await Deno.remove(broken, { recursive: true });
  }
});

Deno.test("parseDockerHost() accepts unix, tcp, bare paths and host:port", () => {
  const from = { from: "test" };
  assert.deepEqual(parseDockerHost("unix:///a/b.sock", from), { kind: "unix", path: "/a/b.sock" });
  assert.deepEqual(parseDockerHost("/a/b.sock", from), { kind: "unix", path: "/a/b.sock" });
  assert.deepEqual(parseDockerHost("tcp://docker:2375/", from), {
    kind: "tcp",
    hostname: "docker",
    port: 2375,
  });
  assert.deepEqual(parseDockerHost("tcp://docker", from), {
    kind: "tcp",
    hostname: "docker",
    port: 2375,
  });
  assert.deepEqual(parseDockerHost("localhost:1234", from), {
    kind: "tcp",
    hostname: "localhost",
    port: 1234,
  });
});

Deno.test("parseDockerHost() rejects malformed and unsupported hosts", () => {
  const from = { from: "-H/--host" };
  assert.throws(() => parseDockerHost("unix://", from), /no socket path/);
  assert.throws(() => parseDockerHost("tcp://h:99999", from), /expected tcp:\/\/host:port/);
  assert.throws(() => parseDockerHost("tcp://h:1/base", from), /expected tcp:\/\/host:port/);
  assert.throws(
    () => parseDockerHost("npipe:////./pipe/docker_engine", from),
    /Unsupported Docker host/,
  );
  assert.throws(
    () => parseDockerHost("https://h:2376", from),
    /TLS endpoints are not supported yet/,
  );
});

Deno.test("describe() renders endpoints as URLs", () => {
  assert.equal(describe({ kind: "unix", path: "/x.sock" }), "unix:///x.sock");
  assert.equal(describe({ kind: "tcp", hostname: "::1", port: 2375 }), "tcp://[::1]:2375");
});

Deno.test("cannotConnect() gives a hint for each connect failure", () => {
  const ep = { kind: "unix", path: "/x.sock" } as const;
  const missing = cannotConnect(DOCKER, ep, new Deno.errors.NotFound("No such file or directory"));
  assert.equal(
    missing.message,
    "Cannot connect to the Docker daemon at unix:///x.sock: no such socket",
  );
  assert.match(missing.hint!, /-H\/--host or DOCKER_HOST/);
  const denied = cannotConnect(DOCKER, ep, new Deno.errors.PermissionDenied("Permission denied"));
  assert.equal(denied.hint, "Run with sudo, or add your user to the docker group");
  const refused = cannotConnect(
    DOCKER,
    ep,
    new Deno.errors.ConnectionRefused("Connection refused"),
  );
  assert.match(refused.message, /: connection refused$/);
  assert.match(refused.hint!, /^Is the Docker daemon running\?/);
  assert.ok(refused.cause instanceof Deno.errors.ConnectionRefused);
  const podman = cannotConnect(PODMAN, ep, new Deno.errors.NotFound("No such file or directory"));
  assert.equal(
    podman.message,
    "Cannot connect to the Podman service at unix:///x.sock: no such socket",
  );
  assert.match(podman.hint!, /systemctl --user start podman.socket/);
});

Deno.test("resolvePodman(): --host, CONTAINER_HOST, the rootless socket if there, root's", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const env = (vars: Record<string, string>) => (k: string) => vars[k];
    const at = async (o: Parameters<typeof resolvePodman>[0]) => {
      const { endpoint, source } = await resolvePodman(o);
      return `${describe(endpoint)} (${source})`;
    };
    const none = env({ XDG_RUNTIME_DIR: dir, CONTAINER_HOST: "" });
    assert.equal(
      await at({ host: "unix:///a.sock", env: none, uid: 1000 }),
      "unix:///a.sock (-H/--host)",
    );
    assert.equal(
      await at({ env: env({ CONTAINER_HOST: "unix:///b.sock" }), uid: 1000 }),
      "unix:///b.sock (CONTAINER_HOST)",
    );
    assert.equal(
      await at({ env: none, uid: 1000 }),
      "unix:///run/podman/podman.sock (root's socket)",
    );
    await Deno.mkdir(`${dir}/podman`);
    const listener = Deno.listen({ transport: "unix", path: `${dir}/podman/podman.sock` });
    try {
      assert.equal(
        await at({ env: none, uid: 1000 }),
        `unix://${dir}/podman/podman.sock (the rootless socket)`,
      );
      // root's containers are root's socket's, whatever XDG_RUNTIME_DIR says
      assert.equal(
        await at({ env: none, uid: 0 }),
        "unix:///run/podman/podman.sock (root's socket)",
      );
    } finally {
      listener.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
