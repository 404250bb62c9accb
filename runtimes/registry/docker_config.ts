/**
 * The docker CLI's config directory and its config.json, read the way the CLI does: a missing
 * or broken file is not an error, callers decide what its absence means.
 *
 * @module
 */

/** `${DOCKER_CONFIG:-$HOME/.docker}`, or undefined when neither is known. */
export function dockerConfigDir(
  env: (k: string) => string | undefined,
  home?: string,
): string | undefined {
  const h = home ?? env("HOME");
  return env("DOCKER_CONFIG") || (h ? `${h}/.docker` : undefined);
}

/** The parsed `config.json` of `dir`, or why it could not be read. */
export async function readDockerConfig(
  dir: string,
): Promise<{ path: string; config?: Record<string, unknown>; error?: unknown }> {
  const path = `${dir}/config.json`;
  try {
    const config = JSON.parse(await Deno.readTextFile(path));
    return { path, config: config && typeof config === "object" ? config : {} };
  } catch (error) {
    return { path, error };
  }
}
