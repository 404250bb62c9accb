/**
 * Making something of several parts on an engine (a copy: its image, container, snapshot,
 * task…) step by step, so that a failure or a stop removes what was made, last first.
 *
 * @module
 */

import { DbgError } from "../lib/errors.ts";

/** The steps of one making; `fail` turns a step's error into the one to report. */
export class Steps {
  #undo: Array<() => Promise<unknown>> = [];

  constructor(
    readonly stop: AbortSignal,
    readonly fail: (e: unknown, what: string) => unknown,
  ) {}

  /** Run one step unless stopped; `undo` removes what it made, once it is made. */
  async run<T>(
    what: string,
    make: () => Promise<T>,
    undo?: (made: T) => Promise<unknown>,
  ): Promise<T> {
    if (this.stop.aborted) throw new DbgError(`stopped before ${what}`);
    let made: T;
    try {
      made = await make();
    } catch (e) {
      throw this.fail(e, what);
    }
    if (undo) this.#undo.push(() => undo(made));
    return made;
  }

  /** Remove what was made, last first; throws the first failure once all were tried. */
  async undo(): Promise<void> {
    let first: unknown;
    for (let step = this.#undo.pop(); step; step = this.#undo.pop()) {
      await step().catch((e) => (first ??= e));
    }
    if (first) throw first;
  }
}
