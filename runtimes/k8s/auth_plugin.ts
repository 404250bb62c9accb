/**
 * Credentials from a kubeconfig user's exec plugin (gke-gcloud-auth-plugin, aws, kubelogin…)
 * or auth provider (oidc…), through `@kubernetes/client-node`, which runs them, caches their
 * tokens and refreshes them. Loaded only for such users: it costs some 400 ms.
 *
 * @module
 */

import * as k8s from "@kubernetes/client-node";
import type { KubeSettings } from "./kubeconfig.ts";
import type { Auth } from "./rest.ts";

/**
 * The context that kubeconfig.ts chose (its cluster and user, paths already absolute) as
 * client-node's config; then, for each request, its headers and TLS PEMs.
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
  return async () => {
    const opts: { headers?: Record<string, string>; ca?: unknown; cert?: unknown; key?: unknown } =
      {};
    await kc.applyToHTTPSOptions(opts as never);
    const pem = (v: unknown) => v === undefined ? undefined : String(v);
    const tls = {
      ca: pem(opts.ca),
      cert: pem(opts.cert),
      key: pem(opts.key),
      serverName: s.cluster["tls-server-name"],
    };
    return { headers: { ...(opts.headers ?? {}) }, tls };
  };
}
