import assert from "node:assert/strict";
import { proxyFor } from "./dial.ts";

Deno.test("proxyFor() takes HTTPS_PROXY unless NO_PROXY names the host", () => {
  const env = (e: Record<string, string>) => (k: string) => e[k];
  const api = new URL("https://api.example.com:6443/x");
  assert.equal(proxyFor(api, env({})), undefined);
  assert.equal(proxyFor(api, env({ https_proxy: "proxy:3128" }))?.href, "http://proxy:3128/");
  assert.equal(proxyFor(api, env({ HTTP_PROXY: "http://p:1" })), undefined);
  for (
    const no of ["*", "example.com", ".example.com", "api.example.com:6443", "x,api.example.com"]
  ) {
    assert.equal(proxyFor(api, env({ HTTPS_PROXY: "http://p:1", NO_PROXY: no })), undefined, no);
  }
  assert.ok(proxyFor(api, env({ HTTPS_PROXY: "http://p:1", NO_PROXY: "ample.com" })));
  assert.ok(proxyFor(new URL("wss://api.example.com/x"), env({ HTTPS_PROXY: "http://p:1" })));
  const ip = new URL("wss://[::1]:6443/x");
  assert.equal(proxyFor(ip, env({ HTTPS_PROXY: "http://p:1", NO_PROXY: "::1" })), undefined);
});
