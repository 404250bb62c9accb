import assert from "node:assert/strict";
import { DbgError } from "../../lib/errors.ts";
import { loadKubeconfig } from "./kubeconfig.ts";

/** Writes kubeconfig files into a temporary dir; returns their paths. */
async function files(docs: Record<string, string>): Promise<Record<string, string>> {
  const dir = await Deno.makeTempDir({ prefix: "dbg-kc-" });
  const out: Record<string, string> = {};
  for (const [name, text] of Object.entries(docs)) {
    out[name] = `${dir}/${name}`;
    await Deno.writeTextFile(out[name], text);
  }
  return out;
}

const FIRST = `apiVersion: v1
kind: Config
current-context: a
clusters:
- name: c
  cluster:
    server: https://first:6443
    certificate-authority: ca.crt
contexts:
- name: a
  context: {cluster: c, user: u, namespace: shop}
users:
- name: u
  user:
    token: t1
`;

const SECOND = JSON.stringify({
  "current-context": "b",
  clusters: [{ name: "c", cluster: { server: "https://second:6443" } }, {
    name: "d",
    cluster: { server: "https://d:6443" },
  }],
  contexts: [{ name: "b", context: { cluster: "d", user: "v" } }],
  users: [{ name: "v", user: { "client-certificate": "/abs/v.crt", "client-key": "v.key" } }],
});

Deno.test("loadKubeconfig() merges KUBECONFIG files as kubectl does: the first name wins", async () => {
  const f = await files({ one: FIRST, two: SECOND, empty: "" });
  const env = (k: string) => (k === "KUBECONFIG" ? `${f.empty}:${f.one}:${f.two}` : undefined);
  const s = loadKubeconfig({ env });
  assert.equal(s.context, "a"); // the first current-context
  assert.equal(s.cluster.server, "https://first:6443"); // c from the first file
  assert.equal(s.namespace, "shop");
  assert.equal(s.user.token, "t1");
  // Relative paths are the file's directory's.
  assert.equal(s.cluster["certificate-authority"], f.one.replace(/one$/, "ca.crt"));
  const b = loadKubeconfig({ env, context: "b", namespace: "x" });
  assert.equal(b.cluster.server, "https://d:6443");
  assert.equal(b.namespace, "x");
  assert.equal(b.user["client-certificate"], "/abs/v.crt");
  assert.equal(b.user["client-key"], f.two.replace(/two$/, "v.key"));
  assert.deepEqual(b.files, [f.empty, f.one, f.two]);
});

Deno.test("loadKubeconfig() says what is wrong in one line", async () => {
  const f = await files({ one: FIRST, bad: "clusters: [", nocurrent: "clusters: []\n" });
  const env = (v?: string) => (k: string) => (k === "KUBECONFIG" ? v : undefined);
  const err = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof DbgError);
      return e.message;
    }
    assert.fail("no error");
  };
  assert.match(
    err(() => loadKubeconfig({ env: env(f.one), context: "zz" })),
    /No context "zz".*a\)/,
  );
  assert.match(err(() => loadKubeconfig({ env: env(f.bad) })), /^Cannot read kubeconfig .*bad/);
  assert.match(err(() => loadKubeconfig({ env: env(f.nocurrent) })), /no current context/);
  assert.match(
    err(() => loadKubeconfig({ env: env(), kubeconfig: `${f.one}.missing` })),
    /^Cannot read kubeconfig .*missing/,
  );
});
