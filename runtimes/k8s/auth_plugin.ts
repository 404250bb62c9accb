/**
 * Credentials from a kubeconfig user's exec plugin (gke-gcloud-auth-plugin, aws, kubelogin…)
 * or auth provider (oidc…), through `@kubernetes/client-node`, which runs them, caches their
 * tokens and refreshes them. Loaded only for such users: it costs some 400 ms.
 *
 * @module
 */

import * as k8s from "@kubernetes/client-node";
import { DbgError } from "../../lib/errors.ts";
import type { KubeSettings } from "./kubeconfig.ts";
import type { Auth } from "./rest.ts";

/**
 * The kubeconfig files merged as kubectl does (the first definition of a name wins), at the
 * context that kubeconfig.ts chose; then, for each request, its headers and TLS client.
 */
export function pluginAuth(s: KubeSettings): () => Promise<Auth> {
  const kc = new k8s.KubeConfig();
  const clusters = new Map<string, k8s.Cluster>();
  const users = new Map<string, k8s.User>();
  const contexts = new Map<string, k8s.Context>();
  for (const file of s.files) {
    if (Deno.statSync(file).size === 0) continue; // kubectl takes an empty file as empty
    const one = new k8s.KubeConfig();
    try {
      one.loadFromFile(file);
    } catch (e) {
      throw new DbgError(`Cannot read kubeconfig ${file}: ${(e as Error).message}`, {
        hint: "Fix the file, or leave it out of KUBECONFIG",
        cause: e,
      });
    }
    for (const c of one.getClusters()) if (!clusters.has(c.name)) clusters.set(c.name, c);
    for (const u of one.getUsers()) if (!users.has(u.name)) users.set(u.name, u);
    for (const c of one.getContexts()) if (!contexts.has(c.name)) contexts.set(c.name, c);
  }
  kc.loadFromOptions({
    clusters: [...clusters.values()],
    users: [...users.values()],
    contexts: [...contexts.values()],
    currentContext: s.context,
  });
  let client: { key: string; client: Deno.HttpClient } | undefined;
  return async () => {
    const opts: { headers?: Record<string, string>; ca?: unknown; cert?: unknown; key?: unknown } =
      {};
    await kc.applyToHTTPSOptions(opts as never);
    const pem = (v: unknown) => v === undefined ? undefined : String(v);
    const [ca, cert, key] = [pem(opts.ca), pem(opts.cert), pem(opts.key)];
    // One TLS client while the plugin's certificate stays the same.
    const id = `${ca}\n${cert}\n${key}`;
    if ((ca || (cert && key)) && client?.key !== id) {
      client = {
        key: id,
        client: Deno.createHttpClient({
          ...(ca ? { caCerts: [ca] } : {}),
          ...(cert && key ? { cert, key } : {}),
        }),
      };
    }
    return { headers: { ...(opts.headers ?? {}) }, client: client?.client };
  };
}
