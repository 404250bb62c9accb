import assert from "node:assert/strict";
import { DbgError } from "../../lib/errors.ts";
import { registryAuthHeader } from "./auth.ts";

/** Decodes an X-Registry-Auth value (base64url with padding) back to JSON. */
function decodeHeader(value: string | undefined): unknown {
  assert.ok(value, "expected a header");
  assert.doesNotMatch(value, /[+/]/);
  const bin = atob(value.replaceAll("-", "+").replaceAll("_", "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
}

async function withConfig(
  config: unknown,
  fn: (env: (k: string) => string | undefined, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dbg-auth-" });
  try {
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
    await fn((k) => (k === "DOCKER_CONFIG" ? dir : undefined), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("registryAuthHeader() is undefined without a config", async () => {
  assert.equal(
    await registryAuthHeader("busybox", { env: () => undefined, home: "/nonexistent" }),
    undefined,
  );
  await withConfig({ auths: {} }, async (env) => {
    assert.equal(await registryAuthHeader("busybox", { env }), undefined);
  });
});

Deno.test("registryAuthHeader() reads Docker Hub auths", async () => {
  const auth = btoa("alice:s3cr:et");
  await withConfig({ auths: { "https://index.docker.io/v1/": { auth } } }, async (env) => {
    assert.deepEqual(decodeHeader(await registryAuthHeader("alice/tools:1", { env })), {
      username: "alice",
      password: "s3cr:et",
      serveraddress: "https://index.docker.io/v1/",
    });
  });
  await withConfig({ auths: { "docker.io": { auth } } }, async (env) => {
    assert.ok(await registryAuthHeader("busybox", { env }));
  });
});

Deno.test("registryAuthHeader() matches https:// keys and identity tokens", async () => {
  const config = {
    auths: {
      "https://registry.example.com:5000/v2/": { identitytoken: "tok" },
      "other.io": { auth: btoa("bob:pw") },
    },
  };
  await withConfig(config, async (env) => {
    assert.deepEqual(
      decodeHeader(await registryAuthHeader("registry.example.com:5000/dbg", { env })),
      { identitytoken: "tok", serveraddress: "registry.example.com:5000" },
    );
    assert.equal(await registryAuthHeader("busybox", { env }), undefined);
  });
});

Deno.test("registryAuthHeader() asks credHelpers before credsStore", async () => {
  const config = {
    credsStore: "desktop",
    credHelpers: { "ghcr.io": "gh" },
    auths: { "ghcr.io": {} },
  };
  await withConfig(config, async (env) => {
    const calls: string[] = [];
    const run = (helper: string, server: string) => {
      calls.push(`${helper} ${server}`);
      return Promise.resolve(
        helper === "gh"
          ? JSON.stringify({ ServerURL: server, Username: "<token>", Secret: "ghs_x" })
          : JSON.stringify({ ServerURL: server, Username: "carol", Secret: "pw" }),
      );
    };
    assert.deepEqual(decodeHeader(await registryAuthHeader("ghcr.io/acme/x", { env, run })), {
      identitytoken: "ghs_x",
      serveraddress: "ghcr.io",
    });
    assert.deepEqual(decodeHeader(await registryAuthHeader("busybox", { env, run })), {
      username: "carol",
      password: "pw",
      serveraddress: "https://index.docker.io/v1/",
    });
    assert.deepEqual(calls, ["gh ghcr.io", "desktop https://index.docker.io/v1/"]);
  });
});

Deno.test("registryAuthHeader() treats 'credentials not found' as anonymous", async () => {
  await withConfig({ credsStore: "pass" }, async (env) => {
    const run = () => Promise.reject(new Error("credentials not found in native keychain"));
    assert.equal(await registryAuthHeader("busybox", { env, run }), undefined);
  });
});

Deno.test("registryAuthHeader() reports a failing helper without its output", async () => {
  await withConfig({ credsStore: "pass" }, async (env) => {
    await assert.rejects(
      registryAuthHeader("busybox", {
        env,
        run: () => Promise.reject(new Error("gpg: decryption failed")),
      }),
      (err: unknown) =>
        err instanceof DbgError &&
        err.message ===
          "Credential helper docker-credential-pass failed for https://index.docker.io/v1/: gpg: decryption failed" &&
        err.hint!.includes("credsStore/credHelpers"),
    );
    await assert.rejects(
      registryAuthHeader("busybox", { env, run: () => Promise.resolve("TOPSECRET not json") }),
      (err: unknown) =>
        err instanceof DbgError && !err.message.includes("TOPSECRET") &&
        !err.hint!.includes("TOPSECRET"),
    );
  });
});

Deno.test("registryAuthHeader() runs a real helper from PATH", async () => {
  const bin = await Deno.makeTempDir({ prefix: "dbg-helper-" });
  const script = `#!/bin/sh
[ "$1" = get ] || exit 2
read -r server
case "$server" in
  registry.test:5000) printf '{"ServerURL":"%s","Username":"dave","Secret":"p@ss"}\\n' "$server" ;;
  broken.test) echo "helper exploded" >&2; exit 1 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;
  await Deno.writeTextFile(`${bin}/docker-credential-fake`, script, { mode: 0o755 });
  const oldPath = Deno.env.get("PATH") ?? "";
  Deno.env.set("PATH", `${bin}:${oldPath}`);
  try {
    await withConfig(
      { credsStore: "fake", credHelpers: { "nohelper.test": "missing" } },
      async (env) => {
        assert.deepEqual(
          decodeHeader(await registryAuthHeader("registry.test:5000/a/b:1", { env })),
          {
            username: "dave",
            password: "p@ss",
            serveraddress: "registry.test:5000",
          },
        );
        assert.equal(await registryAuthHeader("elsewhere.test/x", { env }), undefined);
        await assert.rejects(
          registryAuthHeader("broken.test/x", { env }),
          /failed for broken\.test: helper exploded/,
        );
        await assert.rejects(
          registryAuthHeader("nohelper.test/x", { env }),
          /Credential helper docker-credential-missing not found on PATH/,
        );
      },
    );
  } finally {
    Deno.env.set("PATH", oldPath);
    await Deno.remove(bin, { recursive: true });
  }
});
