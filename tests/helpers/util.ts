/**
 * Small helpers shared by the private containerd and cluster helpers (containerd*.ts,
 * cluster*.ts): sleeping, log tails, hashes, random tokens.
 *
 * @module
 */

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The last component of a path. */
export function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** The last `lines` lines of `text`. */
export function tailOf(text: string, lines = 30): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** The last `lines` lines of the file at `path`, or `(no log)`. */
export async function tail(path: string, lines = 30): Promise<string> {
  try {
    return tailOf(await Deno.readTextFile(path), lines);
  } catch {
    return "(no log)";
  }
}

/** Hex SHA-256 of bytes or of a string's UTF-8. */
export async function sha256Hex(data: Uint8Array<ArrayBuffer> | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `bytes` random bytes, in hex. */
export function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
