// .dockerignore rules (Docker's syntax: globs, `**`, `!` exceptions, last match wins).
import path from "node:path";

export interface IgnoreRule {
  negate: boolean;
  re: RegExp;
}

function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") {
      if (pattern[i + 1] === "*") {
        i++;
        if (pattern[i + 1] === "/") {
          i++;
          re += "(?:.*/)?";
        } else re += ".*";
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < pattern.length) re += "\\" + pattern[++i];
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        let cls = pattern.slice(i + 1, end).replace(/\\/g, "\\\\");
        if (cls.startsWith("!")) cls = "^" + cls.slice(1);
        re += `[${cls}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Parses .dockerignore text (Docker's rules: globs, `**`, `!` re-includes, last match wins). */
export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const negate = line.startsWith("!");
    if (negate) line = line.slice(1).trim();
    line = path.posix.normalize(line).replace(/^\/+/, "").replace(/\/+$/, "");
    if (!line || line === ".") continue;
    rules.push({ negate, re: globToRegExp(line) });
  }
  return rules;
}

/** True when `rel` (posix, relative to the context root) or one of its parents is ignored. */
export function isIgnored(rules: IgnoreRule[], rel: string): boolean {
  const parts = rel.split("/");
  let ignored = false;
  for (const rule of rules) {
    for (let n = 1; n <= parts.length; n++) {
      if (rule.re.test(parts.slice(0, n).join("/"))) {
        ignored = !rule.negate;
        break;
      }
    }
  }
  return ignored;
}
