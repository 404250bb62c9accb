/**
 * Credentials from a kubeconfig user's exec plugin (gke-gcloud-auth-plugin, aws, kubelogin…)
 * or auth provider (oidc…), through `@kubernetes/client-node`, which runs them, caches their
 * tokens and refreshes them. Loaded only for such users: it costs some 400 ms.
 *
 * @module
 */

import * as k8s from "@kubernetes/client-node";
import type { KubeSettings } from "./kubeconfig.ts";
import { type Auth, tlsClient } from "./rest.ts";

/**
 * The context that kubeconfig.ts chose (its cluster and user, paths already absolute) as
 * client-node's config; then, for each request, its headers and TLS client.
 */
export function pluginAuth(s: KubeSettings): () => Promise<Auth> {
  const kc = new k8s.KubeConfig();
  kc.loadFromString(JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: s.clusterName, cluster: s.cluster }],
    users: [{ name: "user", user: s.user }],
    contexts: [{ name: s.context, context: { cluster: s.clusterName, user: "user" } }],
    "current-context": s.context,
  }));
  let client: { id: string; client?: Deno.HttpClient } | undefined;
  return async () => {
    const opts: { headers?: Record<string, string>; ca?: unknown; cert?: unknown; key?: unknown } =
      {};
    await kc.applyToHTTPSOptions(opts as never);
    const pem = (v: unknown) => v === undefined ? undefined : String(v);
    const [ca, cert, key] = [pem(opts.ca), pem(opts.cert), pem(opts.key)];
    // One TLS client while the plugin's certificate stays the same.
    const id = `${ca}\n${cert}\n${key}`;
    if (client?.id !== id) client = { id, client: tlsClient(ca, cert, key) };
    return { headers: { ...(opts.headers ?? {}) }, client: client.client, tls: { ca, cert, key } };
  };
}
