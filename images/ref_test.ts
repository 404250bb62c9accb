import assert from "node:assert/strict";
import { DbgError } from "../lib/errors.ts";
import { parseImageRef } from "./ref.ts";

const DIGEST = "sha256:" + "ab".repeat(32);

Deno.test("parseImageRef() normalises Docker Hub names", () => {
  assert.deepEqual(parseImageRef("busybox:musl"), {
    registry: "docker.io",
    repository: "library/busybox",
    tag: "musl",
    digest: undefined,
    fromImage: "docker.io/library/busybox",
  });
  assert.equal(parseImageRef("busybox").tag, "latest");
  assert.equal(parseImageRef("nicolaka/netshoot").fromImage, "docker.io/nicolaka/netshoot");
  assert.equal(
    parseImageRef("index.docker.io/library/alpine:3").fromImage,
    "docker.io/library/alpine",
  );
  assert.equal(parseImageRef("docker.io/alpine").repository, "library/alpine");
});

Deno.test("parseImageRef() keeps registries with ports and deep paths", () => {
  const local = parseImageRef("127.0.0.1:5000/tools/bb:1");
  assert.deepEqual([local.registry, local.repository, local.tag], [
    "127.0.0.1:5000",
    "tools/bb",
    "1",
  ]);
  const nix = parseImageRef("nixery.dev/shell/curl/jq");
  assert.deepEqual([nix.registry, nix.repository, nix.tag], [
    "nixery.dev",
    "shell/curl/jq",
    "latest",
  ]);
  assert.equal(parseImageRef("localhost/debug").registry, "localhost");
  assert.equal(parseImageRef("localhost:5000/debug").fromImage, "localhost:5000/debug");
});

Deno.test("parseImageRef() reads digests with and without a tag", () => {
  const d = parseImageRef(`busybox@${DIGEST}`);
  assert.deepEqual([d.repository, d.tag, d.digest], ["library/busybox", undefined, DIGEST]);
  const td = parseImageRef(`ghcr.io/acme/dbg:1.2@${DIGEST}`);
  assert.deepEqual([td.registry, td.tag, td.digest], ["ghcr.io", "1.2", DIGEST]);
});

Deno.test("parseImageRef() rejects invalid references", () => {
  for (
    const bad of [
      "Busybox",
      "busybox:",
      "busybox:-x",
      "busybox@sha256:abc",
      "a".repeat(64).replaceAll("a", "f"),
      "",
      "acme//x",
    ]
  ) {
    assert.throws(
      () => parseImageRef(bad),
      (err: unknown) =>
        err instanceof DbgError && err.message.startsWith("Invalid image reference"),
      bad,
    );
  }
});
