// .dockerignore rules through @balena/dockerignore, a port of Docker's own matcher (moby's
// fileutils): globs, `**`, `!` exceptions, last match wins, a match on a parent covers its children.
import dockerignoreModule from "@balena/dockerignore";

// The package is CommonJS with `factory.default = factory`; its typings declare an ES default export.
const dockerignore = dockerignoreModule.default;

export interface IgnoreRules {
  /** True when some `!` rule may re-include a path below an ignored directory. */
  hasExceptions: boolean;
  ignores(rel: string): boolean;
}

/** Parses .dockerignore text. */
export function parseDockerignore(text: string): IgnoreRules {
  const lines = text.split(/\r?\n/);
  const matcher = dockerignore().add(lines);
  return {
    hasExceptions: lines.some((line) => line.trim().startsWith("!")),
    ignores: (rel) => matcher.ignores(rel),
  };
}

/** No rules: nothing is ignored. */
export const NO_IGNORE_RULES: IgnoreRules = { hasExceptions: false, ignores: () => false };

/** True when `rel` (posix, relative to the context root) or one of its parents is ignored. */
export function isIgnored(rules: IgnoreRules, rel: string): boolean {
  return rules.ignores(rel);
}
