/**
 * Credentials and access of the private cluster (cluster.ts): its CA and certificates, files
 * only root reads (tokens, keys), kubeconfigs, and the RBAC of the `limited` user.
 *
 * @module
 */

import type { Api } from "./cluster_api.ts";
import { cleanEnv, sh } from "./dockerd.ts";
import { randomHex } from "./util.ts";

/** RBAC group of the `limited` user, bound to ClusterRole {@link LIMITED_ROLE}. */
export const LIMITED_GROUP = "dbg:limited";
/**
 * ClusterRole of the `limited` user: get/list/watch pods, get pods/log, get+create pods/attach,
 * and not patch/update pods/ephemeralcontainers (so `kubectl debug` is forbidden).
 */
export const LIMITED_ROLE = "dbg-limited";

const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;

/** ECDSA P-256 keys: generated instantly, unlike RSA ones. */
const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/**
 * Writes into `dir`: a CA (ca.crt/key), the API server's serving certificate, its client
 * certificate for the kubelet (O=system:masters), the kubelet's serving certificate (CN
 * localhost) and the service-account RSA key pair (sa.key/sa.pub).
 */
export async function makeCerts(dir: string): Promise<void> {
  const cnf = `${dir}/openssl.cnf`;
  await Deno.writeTextFile(cnf, OPENSSL_CNF);
  const openssl = (args: string[]) => sh(["openssl", ...args], { env: cleanEnv() });
  const saKeys = async () => {
    await openssl(
      ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", `${dir}/sa.key`],
    );
    await openssl(["pkey", "-in", `${dir}/sa.key`, "-pubout", "-out", `${dir}/sa.pub`]);
  };
  const leaf = async (name: string, subject: string, ext: "server" | "client") => {
    const [key, csr, crt] = ["key", "csr", "crt"].map((x) => `${dir}/${name}.${x}`);
    await openssl([
      ...["req", "-new", "-config", cnf, ...EC_KEY, "-keyout", key, "-out", csr],
      ...["-subj", subject],
    ]);
    await openssl([
      ...["x509", "-req", "-in", csr, "-CA", `${dir}/ca.crt`, "-CAkey", `${dir}/ca.key`],
      ...["-set_serial", `0x${randomHex(16)}`, "-days", "3650"],
      ...["-extfile", cnf, "-extensions", ext, "-out", crt],
    ]);
  };
  const caAndLeaves = async () => {
    await openssl([
      ...["req", "-x509", "-config", cnf, "-extensions", "ca", ...EC_KEY],
      ...["-keyout", `${dir}/ca.key`, "-out", `${dir}/ca.crt`, "-days", "3650"],
      ...["-subj", "/CN=dbg-test-ca"],
    ]);
    const kubeletClient = "/O=system:masters/CN=kube-apiserver-kubelet-client";
    await Promise.all([
      leaf("apiserver", "/CN=kube-apiserver", "server"),
      leaf("apiserver-kubelet-client", kubeletClient, "client"),
      leaf("kubelet", "/CN=localhost", "server"),
    ]);
  };
  await Promise.all([saKeys(), caAndLeaves()]); // RSA key generation takes the longest
}

/** A kubeconfig (JSON, which is YAML) for `name` with a bearer token. */
export function kubeconfig(name: string, server: string, caFile: string, token: string): string {
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name, cluster: { server, "certificate-authority": caFile } }],
      users: [{ name, user: { token } }],
      contexts: [{ name, context: { cluster: name, user: name, namespace: "default" } }],
      "current-context": name,
    },
    null,
    2,
  ) + "\n";
}

/** Writes a file only root can read (tokens, keys). */
export async function writeSecret(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text, { mode: 0o600 });
}

/** Creates ClusterRole {@link LIMITED_ROLE} and binds it to group {@link LIMITED_GROUP}. */
export async function createLimitedRbac(api: Api): Promise<void> {
  const group = "rbac.authorization.k8s.io";
  const role = {
    apiVersion: `${group}/v1`,
    kind: "ClusterRole",
    metadata: { name: LIMITED_ROLE },
    rules: [
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
      { apiGroups: [""], resources: ["pods/attach"], verbs: ["get", "create"] },
    ],
  };
  const binding = {
    apiVersion: `${group}/v1`,
    kind: "ClusterRoleBinding",
    metadata: { name: LIMITED_ROLE },
    subjects: [{ kind: "Group", apiGroup: group, name: LIMITED_GROUP }],
    roleRef: { apiGroup: group, kind: "ClusterRole", name: LIMITED_ROLE },
  };
  for (const [kind, obj] of [["clusterroles", role], ["clusterrolebindings", binding]] as const) {
    const r = await api("POST", `/apis/${group}/v1/${kind}`, JSON.stringify(obj));
    if (r.status !== 201) {
      throw new Error(`creating ${kind}/${LIMITED_ROLE}: ${r.status} ${r.body}`);
    }
  }
}
