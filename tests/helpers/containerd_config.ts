/**
 * The `config.toml` of a private containerd (containerd.ts): private root, state, socket and
 * plugin dirs, and the optional CRI plugin section for a kubelet.
 *
 * @module
 */

import type { ContainerdOptions } from "./containerd.ts";

/** The CRI plugin's section of the config (see {@link ContainerdOptions.cri}). */
function criToml(dir: string, snapshotter: string, sandboxImage: string): string[] {
  const q = JSON.stringify;
  const cri = '[plugins."io.containerd.grpc.v1.cri"';
  return [
    `${cri}]`,
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    `  sandbox_image = ${q(sandboxImage)}`,
    "  enable_selinux = false",
    "  disable_apparmor = true",
    "  restrict_oom_score_adj = true",
    "  netns_mounts_under_state_dir = true", // else /var/run/netns
    `  ${cri}.cni]`,
    `    bin_dir = ${q(`${dir}/cni/bin`)}`,
    `    conf_dir = ${q(`${dir}/cni/conf`)}`,
    `  ${cri}.containerd]`,
    `    snapshotter = ${q(snapshotter)}`,
    '    default_runtime_name = "runc"',
    `    ${cri}.containerd.runtimes.runc]`,
    '      runtime_type = "io.containerd.runc.v2"',
    `      ${cri}.containerd.runtimes.runc.options]`,
    "        SystemdCgroup = false",
    `        Root = ${q(`${dir}/runc`)}`,
    "",
  ];
}

export function configToml(
  dir: string,
  address: string,
  snapshotter: string,
  cri?: ContainerdOptions["cri"],
): string {
  const q = JSON.stringify; // a JSON string is a TOML basic string for these plain paths
  return [
    "version = 2",
    `root = ${q(`${dir}/root`)}`,
    `state = ${q(`${dir}/state`)}`,
    `temp = ${q(`${dir}/tmp`)}`,
    // CRI: slow to start, only on request. aufs would run modprobe; the others are skipped.
    "disabled_plugins = [",
    ...(cri ? [] : ['  "io.containerd.grpc.v1.cri",']),
    '  "io.containerd.snapshotter.v1.aufs",',
    '  "io.containerd.snapshotter.v1.btrfs",',
    '  "io.containerd.snapshotter.v1.devmapper",',
    '  "io.containerd.snapshotter.v1.zfs",',
    "]",
    "",
    "[grpc]",
    `  address = ${q(address)}`,
    "",
    "[debug]",
    '  address = ""',
    "",
    "[metrics]",
    '  address = ""',
    "",
    // Its default, /opt/containerd, is created on the host otherwise.
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(`${dir}/opt`)}`,
    "",
    ...(cri ? criToml(dir, snapshotter, cri.sandboxImage) : []),
  ].join("\n");
}
