import assert from "node:assert/strict";
import { CATALOG, checkImageInput, resolveImage } from "./catalog.ts";

Deno.test("resolveImage() defaults to static busybox:musl", () => {
  const img = resolveImage(undefined);
  assert.equal(img.ref, "busybox:musl");
  assert.equal(img.static, true);
  assert.equal(img.custom, false);
  assert.equal(CATALOG[0].name, "busybox");
});

Deno.test("resolveImage() turns nix:pkg,pkg into a nixery ref", () => {
  const img = resolveImage("nix:curl,jq");
  assert.equal(img.ref, "nixery.dev/shell/curl/jq");
  assert.equal(img.nix, true);
  assert.equal(resolveImage("nixery.dev/shell/htop").nix, true);
});

Deno.test("resolveImage() knows aliases, mirrors of busybox:musl and netshoot", () => {
  assert.equal(resolveImage("netshoot").ref, "nicolaka/netshoot:latest");
  assert.equal(resolveImage("netshoot").static, false);
  assert.equal(resolveImage("nicolaka/netshoot").static, false);
  assert.equal(resolveImage("127.0.0.1:5000/tools/busybox:musl").static, true);
  assert.equal(resolveImage("busybox:latest").custom, true);
});

Deno.test("resolveImage() takes any other ref as a custom image", () => {
  const img = resolveImage("alpine:3.20");
  assert.equal(img.custom, true);
  assert.equal(img.static, false);
  assert.equal(img.shell, "/bin/sh");
});

Deno.test("checkImageInput() rejects bad nix aliases, and references as Docker does", () => {
  assert.match(checkImageInput("nix:")!, /Bad nix image/);
  assert.match(checkImageInput("a b")!, /Invalid image reference "a b"/);
  assert.match(checkImageInput("Busybox:MUSL")!, /repository name must be lowercase/);
  assert.equal(checkImageInput("busybox:musl"), undefined);
  assert.equal(checkImageInput("nix:curl"), undefined);
});
