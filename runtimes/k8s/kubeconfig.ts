/**
 * kubeconfig loading the way kubectl does it, without `@kubernetes/client-node`, whose
 * KubeConfig alone loads its whole generated API (about 1,000 modules, some 400 ms): the files
 * of `--kubeconfig` or `KUBECONFIG` merged (the first definition of a name wins), else
 * `~/.kube/config`, else the in-cluster service account; the context, its cluster and user.
 * Users with an exec plugin or an auth provider are left to client-node (auth_plugin.ts).
 *
 * @module
 */

import { load as loadYaml } from "js-yaml";
import { DbgError } from "../../lib/errors.ts";

/** Where the in-cluster service account lives. */
const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A kubeconfig cluster, as written (kebab-case keys). */
export interface ClusterEntry {
  server?: string;
  "certificate-authority"?: string;
  "certificate-authority-data"?: string;
  "insecure-skip-tls-verify"?: boolean;
  "tls-server-name"?: string;
  "proxy-url"?: string;
}

/** A kubeconfig user, as written. */
export interface UserEntry {
  token?: string;
  tokenFile?: string;
  "client-certificate"?: string;
  "client-certificate-data"?: string;
  "client-key"?: string;
  "client-key-data"?: string;
  username?: string;
  password?: string;
  exec?: unknown;
  "auth-provider"?: unknown;
  /** Impersonation: the user, groups and uid to act as. */
  as?: string;
  "as-groups"?: string[];
  "as-uid"?: string;
}

interface ContextEntry {
  cluster?: string;
  user?: string;
  namespace?: string;
}

/** The chosen context, its cluster and user, with file paths made absolute. */
export interface KubeSettings {
  /** The kubeconfig files read, or empty for the in-cluster service account. */
  files: string[];
  context: string;
  clusterName: string;
  cluster: ClusterEntry;
  user: UserEntry;
  /** `-n`, else the context's, else `default`. */
  namespace: string;
}

/** What to load: the flags and the environment. */
export interface LoadOptions {
  /** `--kubeconfig` (one file, as in kubectl). */
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  env: (k: string) => string | undefined;
}

type Named<T> = { name?: string } & Record<string, T | undefined>;

/** Load the kubeconfig like kubectl (see the module's comment). */
export function loadKubeconfig(opts: LoadOptions): KubeSettings {
  const home = opts.env("HOME") ?? "";
  const files = opts.kubeconfig
    ? [opts.kubeconfig]
    : (opts.env("KUBECONFIG") ?? "").split(":").filter(Boolean);
  if (files.length === 0 && home) files.push(`${home}/.kube/config`);
  const present = files.filter((f) => exists(f));
  if (opts.kubeconfig && present.length < files.length) {
    throw new DbgError(`Cannot read kubeconfig ${files.find((f) => !exists(f))}`, {
      hint: "Check the --kubeconfig path",
    });
  }
  if (present.length === 0) {
    if (exists(`${SERVICE_ACCOUNT}/token`)) return inCluster(opts);
    const tried = files.length > 0 ? ` (no ${files.join(", ")})` : "";
    throw new DbgError(`No Kubernetes configuration found${tried}`, {
      hint: "Point KUBECONFIG (or --kubeconfig) at a kubeconfig file, or run dbg in a pod",
    });
  }
  const clusters = new Map<string, ClusterEntry>();
  const users = new Map<string, UserEntry>();
  const contexts = new Map<string, ContextEntry>();
  let current = "";
  for (const file of present) {
    const doc = readFile(file);
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/") + 1) : "./";
    const abs = (p?: string) => (p && !p.startsWith("/") ? dir + p : p);
    for (const c of list<ClusterEntry>(doc.clusters, "cluster")) {
      const e = { ...c.entry };
      e["certificate-authority"] = abs(e["certificate-authority"]);
      if (!clusters.has(c.name)) clusters.set(c.name, e);
    }
    for (const u of list<UserEntry>(doc.users, "user")) {
      const e = { ...u.entry };
      for (const k of ["tokenFile", "client-certificate", "client-key"] as const) e[k] = abs(e[k]);
      if (!users.has(u.name)) users.set(u.name, e);
    }
    for (const c of list<ContextEntry>(doc.contexts, "context")) {
      if (!contexts.has(c.name)) contexts.set(c.name, c.entry);
    }
    current ||= typeof doc["current-context"] === "string" ? doc["current-context"] : "";
  }
  if (opts.context && !contexts.has(opts.context)) {
    const names = [...contexts.keys()].join(", ") || "none";
    throw new DbgError(`No context "${opts.context}" in the kubeconfig (contexts: ${names})`, {
      hint: "Pick one with --context, or list them with: kubectl config get-contexts",
    });
  }
  const context = opts.context || current;
  const ctx = contexts.get(context);
  const cluster = ctx?.cluster ? clusters.get(ctx.cluster) : undefined;
  if (!ctx || !cluster?.server) {
    throw new DbgError(`The kubeconfig has no current context with a cluster`, {
      hint: "Pass --context NAME, or set one with: kubectl config use-context NAME",
    });
  }
  return {
    files: present,
    context,
    clusterName: ctx.cluster!,
    cluster,
    user: (ctx.user ? users.get(ctx.user) : undefined) ?? {},
    namespace: opts.namespace || ctx.namespace || "default",
  };
}

/** The pod's service account, as client-go's in-cluster config reads it. */
function inCluster(opts: LoadOptions): KubeSettings {
  const host = opts.env("KUBERNETES_SERVICE_HOST") ?? "";
  const port = opts.env("KUBERNETES_SERVICE_PORT") ?? "443";
  let namespace = opts.namespace;
  try {
    namespace ||= Deno.readTextFileSync(`${SERVICE_ACCOUNT}/namespace`).trim();
  } catch { /* none */ }
  return {
    files: [],
    context: "in-cluster",
    clusterName: "in-cluster",
    cluster: {
      server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
      "certificate-authority": `${SERVICE_ACCOUNT}/ca.crt`,
    },
    user: { tokenFile: `${SERVICE_ACCOUNT}/token` },
    namespace: namespace || "default",
  };
}

/** One kubeconfig file as an object; an empty file is an empty config, as for kubectl. */
function readFile(file: string): Record<string, unknown> {
  try {
    const text = Deno.readTextFileSync(file);
    if (!text.trim()) return {};
    const doc = loadYaml(text);
    if (doc === null || doc === undefined) return {};
    if (typeof doc !== "object" || Array.isArray(doc)) throw new Error("not a kubeconfig");
    return doc as Record<string, unknown>;
  } catch (e) {
    throw new DbgError(`Cannot read kubeconfig ${file}: ${(e as Error).message}`, {
      hint: "Fix the file, or leave it out of KUBECONFIG",
      cause: e,
    });
  }
}

/** The named entries of a kubeconfig list (`clusters`, `users`, `contexts`). */
function list<T>(items: unknown, key: string): { name: string; entry: T }[] {
  if (!Array.isArray(items)) return [];
  return (items as Named<T>[])
    .filter((i) => i && typeof i.name === "string")
    .map((i) => ({ name: i.name!, entry: (i[key] ?? {}) as T }));
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
