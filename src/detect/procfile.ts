// Procfile (the Heroku / Paketo convention): one `type: command` per line. Detection takes
// `web`, else `worker`, else the first process type in file order (`release` is a one-off task,
// never the service); the repos file picks another with `entrypoint: {process: NAME}`.
// Hand-written: the format is one regex per line, and the command is split without a shell
// (quotes are honoured, anything that needs a shell is refused, see splitCommand).
import { IacError } from "../kernel/errors.js";

export class ProcfileError extends IacError {
  override name = "ProcfileError";
}

export interface ProcessType {
  type: string;
  command: string;
  /** 1-based line in the Procfile. */
  line: number;
}

const LINE_RE = /^([A-Za-z0-9_-]+)[ \t]*:[ \t]*(.*)$/;
export const PROCESS_NAME_RE = /^[A-Za-z0-9_-]{1,63}$/;
/** Process types that are never the service: run once per release, not kept running. */
const ONE_OFF = new Set(["release"]);

const SHELL_HINT =
  "write the command without shell syntax (no $VAR, pipes, redirects, `;`, `&&`), or set " +
  "`entrypoint:` for the service in the repos file (argv list) or [tool.iac] entrypoint";

export function parseProcfile(text: string): ProcessType[] {
  const out: ProcessType[] = [];
  const seen = new Set<string>();
  text
    .replace(/\r\n?/g, "\n")
    .split("\n")
    .forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const m = LINE_RE.exec(line);
      if (!m)
        throw new ProcfileError(
          `Procfile:${i + 1}: '${line.slice(0, 80)}' is not of the form 'type: command'`,
          "each line of a Procfile is `<process type>: <command>`, e.g. `web: python -m app`",
        );
      const type = m[1]!;
      if (seen.has(type))
        throw new ProcfileError(`Procfile:${i + 1}: process type '${type}' is defined twice`);
      seen.add(type);
      if (m[2]!.trim() === "")
        throw new ProcfileError(`Procfile:${i + 1}: process type '${type}' has no command`);
      out.push({ type, command: m[2]!.trim(), line: i + 1 });
    });
  return out;
}

/**
 * The process to run: `wanted`, else web, else worker, else the first that is not a one-off.
 * Undefined when the Procfile names no candidate (only `release:`).
 */
export function pickProcess(types: ProcessType[], wanted?: string): ProcessType | undefined {
  if (wanted !== undefined) {
    const hit = types.find((t) => t.type === wanted);
    if (!hit)
      throw new ProcfileError(
        `Procfile has no process type '${wanted}' (it has: ${types.map((t) => t.type).join(", ") || "none"})`,
        "set `entrypoint: {process: NAME}` to one of the process types in the Procfile",
      );
    return hit;
  }
  return (
    types.find((t) => t.type === "web") ??
    types.find((t) => t.type === "worker") ??
    types.find((t) => !ONE_OFF.has(t.type))
  );
}

/**
 * Splits a Procfile command into argv the way a POSIX shell splits words, without running one:
 * '…' and "…" quote (\" \\ \$ \` escape inside double quotes), a backslash escapes outside.
 * Anything a shell would expand or interpret ($VAR, `cmd`, |, &, ;, <, >, (, ), a leading
 * VAR=value, ~) is refused with the place named: we never hand repo text to a shell.
 */
export function splitCommand(command: string, where: string): string[] {
  const argv: string[] = [];
  let word = "";
  let inWord = false;
  const refuse = (what: string): never => {
    throw new ProcfileError(
      `${where}: '${command}' uses ${what}, which needs a shell; commands run without one`,
      SHELL_HINT,
    );
  };
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === " " || c === "\t") {
      if (inWord) argv.push(word);
      word = "";
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) refuse("an unterminated quote");
      word += command.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < command.length && command[j] !== '"'; j++) {
        const d = command[j]!;
        if (d === "\\" && j + 1 < command.length && '"\\$`'.includes(command[j + 1]!)) {
          word += command[++j];
        } else if (d === "$" || d === "`") refuse(`'${d}' (expansion)`);
        else word += d;
      }
      if (j >= command.length) refuse("an unterminated quote");
      i = j;
    } else if (c === "\\") {
      if (i + 1 < command.length) word += command[++i];
    } else if ("$`|&;<>()".includes(c)) {
      refuse(`'${c}'`);
    } else if (c === "~" && word === "") {
      refuse("'~' (home directory expansion)");
    } else if (c === "*" || c === "?" || c === "[") {
      refuse(`'${c}' (a glob)`);
    } else {
      word += c;
    }
  }
  if (inWord) argv.push(word);
  if (argv.length === 0) throw new ProcfileError(`${where}: the command is empty`);
  if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(argv[0]!)) refuse("a leading VAR=value assignment");
  return argv;
}
