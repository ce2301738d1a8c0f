// A repo's own Dockerfile, read statically (nothing is built or run to learn this): its stages,
// the external images its FROM lines name (so the build can map them onto local images), and
// what the final image would run -- `LABEL io.iac.entrypoint=...`, ENTRYPOINT and CMD, as the
// final stage inherits them from the stages it is built FROM. Parsed with `dockerfile-ast`
// (the parser of the VS Code Docker language server: line continuations, the escape
// directive, quoting of LABEL values, JSON (exec) form), not by hand.
import {
  Arg,
  DockerfileParser,
  From,
  JSONInstruction,
  Label,
  type Instruction,
} from "dockerfile-ast";
import { IacError } from "../kernel/errors.js";

export class DockerfileError extends IacError {
  override name = "DockerfileError";
}

export const ENTRYPOINT_LABEL = "io.iac.entrypoint";

/** One FROM of an image from outside (not `scratch`, not an earlier stage). */
export interface ExternalFrom {
  /** The image reference after ARG expansion, e.g. python:3.11-slim. */
  image: string;
  /** 1-based line of the FROM. */
  line: number;
  /** Offsets of the image reference in the Dockerfile text (to substitute a local image). */
  start: number;
  end: number;
}

/** What a command instruction says: exec form = argv; shell form = the text (not used). */
export type CommandForm = { exec: string[] } | { shell: string };

export interface DockerfileFacts {
  froms: ExternalFrom[];
  /** `io.iac.entrypoint` of the final image (its stage chain), as written. */
  label?: string;
  entrypoint?: CommandForm;
  /** CMD of the final image (reset by a later ENTRYPOINT, as Docker does). */
  cmd?: CommandForm;
}

function offsets(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") starts.push(i + 1);
  return starts;
}

/** `$NAME` / `${NAME}` from the ARGs declared before the first FROM (their defaults). */
function expand(ref: string, args: Map<string, string>, line: number): string {
  const out = ref.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (m, a, b) => {
      const v = args.get((a ?? b) as string);
      if (v === undefined)
        throw new DockerfileError(
          `Dockerfile:${line}: FROM ${ref} uses ${m}, which has no default in an ARG before the first FROM`,
          "give the ARG a default (ARG NAME=value before the first FROM) or write the image name out",
        );
      return v;
    },
  );
  if (out.includes("$"))
    throw new DockerfileError(
      `Dockerfile:${line}: FROM ${ref}: only $NAME and \${NAME} can be expanded here`,
      "write the image name out, or use ARG NAME=value with ${NAME}",
    );
  return out;
}

function commandForm(ins: Instruction): CommandForm {
  if (ins instanceof JSONInstruction && ins.getOpeningBracket() && ins.getClosingBracket())
    return { exec: ins.getJSONStrings().map((s) => s.getJSONValue()) };
  return { shell: ins.getArgumentsContent() ?? "" };
}

/** Parses the Dockerfile text; throws DockerfileError naming the line for what it cannot use. */
export function readDockerfile(text: string): DockerfileFacts {
  const doc = DockerfileParser.parse(text);
  const starts = offsets(text);
  const globalArgs = new Map<string, string>();
  interface Stage {
    name?: string;
    parent?: number;
    instructions: Instruction[];
  }
  const stages: Stage[] = [];
  const froms: ExternalFrom[] = [];
  for (const ins of doc.getInstructions()) {
    const kw = ins.getKeyword().toUpperCase();
    const line = ins.getRange().start.line + 1;
    if (ins instanceof Arg && stages.length === 0) {
      const a = ins.getProperty();
      const value = a?.getValue();
      if (a && value !== null && value !== undefined) globalArgs.set(a.getName(), value);
      continue;
    }
    if (ins instanceof From) {
      const from = ins;
      const raw = from.getImage();
      const range = from.getImageRange();
      if (!raw || !range) throw new DockerfileError(`Dockerfile:${line}: FROM without an image`);
      const image = expand(raw, globalArgs, line);
      const parent = stages.findIndex(
        (s) => s.name !== undefined && s.name.toLowerCase() === image.toLowerCase(),
      );
      const name = from.getBuildStage() ?? undefined;
      stages.push({ name, parent: parent >= 0 ? parent : undefined, instructions: [] });
      if (parent < 0 && image !== "scratch")
        froms.push({
          image,
          line,
          start: starts[range.start.line]! + range.start.character,
          end: starts[range.end.line]! + range.end.character,
        });
      continue;
    }
    if (stages.length === 0)
      throw new DockerfileError(
        `Dockerfile:${line}: ${kw} before the first FROM`,
        "a Dockerfile starts with FROM (only ARG may come before it)",
      );
    stages[stages.length - 1]!.instructions.push(ins);
  }
  if (stages.length === 0)
    throw new DockerfileError("Dockerfile has no FROM", "a Dockerfile starts with FROM <image>");

  // The final image: the last stage, on top of the stages it names in FROM.
  const chain: Stage[] = [];
  let stage: Stage | undefined = stages[stages.length - 1];
  while (stage) {
    chain.unshift(stage);
    stage = stage.parent !== undefined ? stages[stage.parent] : undefined;
  }
  const facts: DockerfileFacts = { froms };
  for (const link of chain) {
    for (const ins of link.instructions) {
      const kw = ins.getKeyword().toUpperCase();
      if (ins instanceof Label) {
        for (const p of ins.getProperties()) {
          const value = p.getValue();
          if (p.getName() === ENTRYPOINT_LABEL && value !== null) facts.label = value;
        }
      } else if (kw === "ENTRYPOINT") {
        facts.entrypoint = commandForm(ins);
        delete facts.cmd; // Docker: setting ENTRYPOINT resets an inherited CMD
      } else if (kw === "CMD") {
        facts.cmd = commandForm(ins);
      }
    }
  }
  return facts;
}

/**
 * The argv the final image runs, when it is in exec form: ENTRYPOINT + CMD. Otherwise the
 * reason it cannot be used (shell form would need /bin/sh -c with the repo's text).
 */
export function execArgv(facts: DockerfileFacts): { argv?: string[]; why: string } {
  const ep = facts.entrypoint;
  const cmd = facts.cmd;
  if (!ep && !cmd) return { why: "Dockerfile ENTRYPOINT / CMD: none" };
  if (ep && "shell" in ep)
    return {
      why: `Dockerfile ENTRYPOINT ${ep.shell}: shell form is not used (write it in exec form, ENTRYPOINT ["python", "app.py"])`,
    };
  if (cmd && "shell" in cmd)
    return {
      why: `Dockerfile CMD ${cmd.shell}: shell form is not used (write it in exec form, CMD ["python", "app.py"])`,
    };
  const argv = [...(ep && "exec" in ep ? ep.exec : []), ...(cmd && "exec" in cmd ? cmd.exec : [])];
  if (argv.length === 0) return { why: "Dockerfile ENTRYPOINT / CMD: empty" };
  return { argv, why: "" };
}

/** A label value as argv: a JSON array of strings, or words split on whitespace. */
export function labelArgv(value: string, where: string): string[] {
  const v = value.trim();
  let argv: unknown;
  if (v.startsWith("[")) {
    try {
      argv = JSON.parse(v);
    } catch {
      argv = undefined;
    }
    if (!Array.isArray(argv) || !argv.every((a) => typeof a === "string"))
      throw new DockerfileError(
        `${where}: ${ENTRYPOINT_LABEL} ${v} is not a JSON list of strings`,
        `e.g. ${ENTRYPOINT_LABEL}='["python", "-m", "app"]' or ${ENTRYPOINT_LABEL}="python -m app"`,
      );
  } else argv = v.split(/\s+/).filter(Boolean);
  const list = argv as string[];
  if (list.length === 0 || list.some((a) => a === "" || a.includes("\0")))
    throw new DockerfileError(`${where}: ${ENTRYPOINT_LABEL} is empty or has an empty argument`);
  return list;
}

/** The Dockerfile text with each external FROM image replaced (`images`: old ref -> new ref). */
export function rewriteFroms(text: string, froms: ExternalFrom[], images: Map<string, string>) {
  let out = text;
  for (const f of [...froms].sort((a, b) => b.start - a.start)) {
    const to = images.get(f.image);
    if (to !== undefined && to !== f.image) out = out.slice(0, f.start) + to + out.slice(f.end);
  }
  return out;
}
