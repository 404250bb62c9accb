/**
 * The keeper: the main process of a throwaway copy of a target that is not running. A copy
 * starts with the target's own filesystem as its root, which may hold no program at all (a
 * shell-less image), so dbg brings its own: a static Linux executable of a few dozen
 * instructions, made here, that ignores SIGCHLD (so the orphans it inherits as PID 1 are reaped
 * by the kernel) and then sleeps in a system call until it is killed. The sidecar then joins the
 * copy as it joins any running target.
 *
 * The machine code (in the comments, as llvm-mc assembles it) is dbg's own; nothing of the
 * target's or of the debugger image's runs as the copy's main process.
 *
 * @module
 */

/** Where the keeper sits in a copy (a volume or bind mount of dbg's, read-only). */
export const KEEPER_DIR = "/.dbg";
export const KEEPER_PATH = `${KEEPER_DIR}/keeper`;

/** Linux architectures dbg brings a keeper for, by their Go/OCI names. */
export type KeeperArch = "amd64" | "arm64";

const CODE: Record<KeeperArch, { machine: number; code: number[] }> = {
  amd64: {
    machine: 62, // EM_X86_64
    code: [
      // rt_sigaction(SIGCHLD, &{handler: SIG_IGN, flags: 0, restorer: 0, mask: 0}, NULL, 8)
      ...[0x6a, 0x00, 0x6a, 0x00, 0x6a, 0x00, 0x6a, 0x01], // push $0 ×3; push $1
      ...[0xbf, 0x11, 0x00, 0x00, 0x00], // mov $17, %edi
      ...[0x48, 0x89, 0xe6], // mov %rsp, %rsi
      ...[0x31, 0xd2], // xor %edx, %edx
      ...[0x41, 0xba, 0x08, 0x00, 0x00, 0x00], // mov $8, %r10d
      ...[0xb8, 0x0d, 0x00, 0x00, 0x00], // mov $13, %eax (rt_sigaction)
      ...[0x0f, 0x05], // syscall
      // 1: pause(); jmp 1b
      ...[0xb8, 0x22, 0x00, 0x00, 0x00], // mov $34, %eax (pause)
      ...[0x0f, 0x05], // syscall
      ...[0xeb, 0xf7], // jmp 1b
    ],
  },
  arm64: {
    machine: 183, // EM_AARCH64
    code: words([
      // rt_sigaction(SIGCHLD, &{handler: SIG_IGN, 0, 0, 0}, NULL, 8)
      0xd2800020, // mov x0, #1
      0xa9be7fe0, // stp x0, xzr, [sp, #-32]!
      0xa9017fff, // stp xzr, xzr, [sp, #16]
      0xd2800220, // mov x0, #17
      0x910003e1, // mov x1, sp
      0xd2800002, // mov x2, #0
      0xd2800103, // mov x3, #8
      0xd28010c8, // mov x8, #134 (rt_sigaction)
      0xd4000001, // svc #0
      // 1: ppoll(NULL, 0, NULL, NULL, 0) (arm64 has no pause); b 1b
      0xd2800000, // mov x0, #0
      0xd2800001, // mov x1, #0
      0xd2800002, // mov x2, #0
      0xd2800003, // mov x3, #0
      0xd2800004, // mov x4, #0
      0xd2800928, // mov x8, #73 (ppoll)
      0xd4000001, // svc #0
      0x17fffff9, // b 1b
    ]),
  },
};

function words(ws: number[]): number[] {
  return ws.flatMap((w) => [w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24]);
}

/** A Go/OCI architecture name (or uname's) as a keeper architecture, if dbg has one. */
export function keeperArch(arch: string | undefined): KeeperArch | undefined {
  switch (arch) {
    case "amd64":
    case "x86_64":
      return "amd64";
    case "arm64":
    case "aarch64":
      return "arm64";
  }
  return undefined;
}

/**
 * The keeper for `arch` as a complete ELF64 executable: the ELF header, one loadable segment
 * (read and execute) that maps the whole file at 0x400000, and the code right after them.
 */
export function keeperElf(arch: KeeperArch): Uint8Array {
  const { machine, code } = CODE[arch];
  const base = 0x400000;
  const headers = 64 + 56;
  const size = headers + code.length;
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  buf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // ELF, 64-bit, little-endian, version 1
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, machine, true);
  v.setUint32(20, 1, true); // EV_CURRENT
  v.setBigUint64(24, BigInt(base + headers), true); // entry
  v.setBigUint64(32, 64n, true); // program headers right after this header
  v.setUint16(52, 64, true); // header size
  v.setUint16(54, 56, true); // program header size
  v.setUint16(56, 1, true); // one program header
  v.setUint16(58, 64, true); // section header size (there are none)
  const ph = 64;
  v.setUint32(ph, 1, true); // PT_LOAD
  v.setUint32(ph + 4, 5, true); // PF_R | PF_X
  v.setBigUint64(ph + 16, BigInt(base), true); // vaddr
  v.setBigUint64(ph + 24, BigInt(base), true); // paddr
  v.setBigUint64(ph + 32, BigInt(size), true); // file size
  v.setBigUint64(ph + 40, BigInt(size), true); // memory size
  v.setBigUint64(ph + 48, 0x1000n, true); // alignment
  buf.set(code, headers);
  return buf;
}
