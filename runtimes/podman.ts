/**
 * The Podman adapter: Podman's service speaks Docker's Engine API, so this is the Docker
 * adapter with Podman's socket and Podman's words (runtimes/docker/engine.ts).
 *
 * @module
 */

import type { RuntimeAdapter } from "../lib/adapter.ts";
import { DockerAdapter } from "./docker.ts";
import { PODMAN } from "./docker/engine.ts";

/** The Podman adapter. */
export const adapter: RuntimeAdapter = new DockerAdapter(PODMAN);
