/**
 * Text that came from outside (an engine, a registry, a kubelet, a target) on the operator's
 * terminal: its control characters, which could drive the terminal (escape sequences, cursor
 * moves, title changes), are made spaces. dbg's own line breaks stay.
 *
 * @module
 */

// deno-lint-ignore no-control-regex
const CONTROLS = /[\x00-\x1f\x7f-\x9f]+/g;

/** One line of outside text: every run of control characters, line breaks too, one space. */
export function printable(text: string): string {
  return text.replace(CONTROLS, " ").trim();
}

/** Lines for the terminal: each line made printable; the line breaks between them stay. */
export function printableLines(text: string): string {
  return text.split("\n").map((l) => l.replace(CONTROLS, " ").trimEnd()).join("\n");
}
