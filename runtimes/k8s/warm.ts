/**
 * The first TLS handshake of a process waits for the crypto library's one-time setup: ~25 ms
 * of CPU, 30-45 ms of wall time on a busy machine. An elliptic-curve key made on a worker
 * thread does that setup beside dbg's other work. runtimes/mod.ts asks for it before the Kubernetes adapter's modules load (which
 * takes ~13 ms), dial.ts as it loads (for whatever else loads it).
 *
 * @module
 */

let begun = false;

/** Begin the setup on a worker thread, once per process. */
export function warmTls(): void {
  if (begun) return;
  begun = true;
  crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"])
    .catch(() => {});
}
