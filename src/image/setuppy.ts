// A legacy setup.py's literal dependencies, read with Python's `ast` inside a throwaway
// container from the base image (never on the host, never executed): no network, no
// capabilities, an unprivileged user, bounded memory and time. Only literals count: a list
// of strings, or a top-level name assigned one; anything computed is reported as such, so
// the caller can name the file and ask for a requirements file. Results are cached by the
// file's content hash.
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import { IacError } from "../kernel/errors.js";
import { fileEntry, tarStream } from "./context.js";

export class SetupPyError extends IacError {
  override name = "SetupPyError";
}

/** What a setup.py declares; `null` = present but not a literal (computed when it runs). */
export interface SetupPyFacts {
  install_requires: string[] | null;
  extras_require: Record<string, string[]> | null;
  setup_requires: string[] | null;
  /** A syntax error or no setup() call, with the line. */
  error?: string;
}

/** Runs in the container: reads /tmp/iac/setup.py, prints one JSON document. Never imports it. */
export const SETUP_PY_READER = String.raw`
import ast, json, sys

src = open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/iac/setup.py", "rb").read()
out = {"install_requires": [], "extras_require": {}, "setup_requires": []}
try:
    tree = ast.parse(src, "setup.py")
except SyntaxError as e:
    print(json.dumps({"error": "syntax error at line %s: %s" % (e.lineno, e.msg)}))
    sys.exit(0)
names = {}
for node in tree.body:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        names[node.targets[0].id] = node.value

def literal(node, depth=0):
    if isinstance(node, ast.Name) and node.id in names and depth < 5:
        return literal(names[node.id], depth + 1)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = literal(node.left, depth + 1), literal(node.right, depth + 1)
        return a + b if isinstance(a, list) and isinstance(b, list) else None
    try:
        return ast.literal_eval(node)
    except Exception:
        return None

call = None
for node in ast.walk(tree):
    if isinstance(node, ast.Call):
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
        if name == "setup":
            call = node
if call is None:
    print(json.dumps({"error": "no setup() call found"}))
    sys.exit(0)
for kw in call.keywords:
    if kw.arg is None:
        value = literal(kw.value)
        if isinstance(value, dict):
            for k in out:
                if k in value:
                    out[k] = value[k]
        else:
            out = {k: None for k in out}
        continue
    if kw.arg in out:
        out[kw.arg] = literal(kw.value)

def strs(v):
    if isinstance(v, str):
        v = [l.strip() for l in v.splitlines() if l.strip() and not l.strip().startswith("#")]
    return v if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v) else None

res = {"install_requires": strs(out["install_requires"]), "setup_requires": strs(out["setup_requires"])}
er = out["extras_require"]
if isinstance(er, dict) and all(isinstance(k, str) for k in er):
    conv = {k: strs(v) for k, v in er.items()}
    res["extras_require"] = None if any(v is None for v in conv.values()) else conv
else:
    res["extras_require"] = None
print(json.dumps(res))
`;

const TIMEOUT_MS = 60_000;

function demux(buf: Buffer): { stdout: string; stderr: string } {
  let stdout = "";
  let stderr = "";
  for (let i = 0; i + 8 <= buf.length;) {
    const len = buf.readUInt32BE(i + 4);
    const chunk = buf.subarray(i + 8, i + 8 + len).toString("utf8");
    if (buf[i] === 2) stderr += chunk;
    else stdout += chunk;
    i += 8 + len;
  }
  return { stdout, stderr };
}

/**
 * Reads setup.py's literal install_requires / extras_require / setup_requires in a container
 * of `image` (the base image: it has python3). Cached in `${cacheDir}/setup-py/<sha256>.json`.
 */
export async function readSetupPy(
  docker: Docker,
  image: string,
  text: string,
  cacheDir: string,
): Promise<SetupPyFacts> {
  const hash = createHash("sha256").update(SETUP_PY_READER).update("\0").update(text).digest("hex");
  const cacheFile = path.join(cacheDir, "setup-py", `${hash}.json`);
  try {
    return JSON.parse(await readFile(cacheFile, "utf8")) as SetupPyFacts;
  } catch {
    // not cached yet
  }
  const container = await docker.createContainer({
    Image: image,
    Entrypoint: ["python3", "-I", "-S", "-c", SETUP_PY_READER],
    Cmd: [],
    User: "65534:65534",
    WorkingDir: "/tmp",
    NetworkDisabled: true,
    Labels: { "io.iac.purpose": "setup-py-reader" },
    HostConfig: {
      NetworkMode: "none",
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      Memory: 256 * 1024 * 1024,
      PidsLimit: 32,
    },
  });
  try {
    const tar = tarStream([
      { name: "iac", type: "dir", mode: 0o755 },
      { ...fileEntry("iac/setup.py", text), mode: 0o644 },
    ]);
    await container.putArchive(tar, { path: "/tmp" });
    await container.start();
    const timer = setTimeout(() => void container.kill().catch(() => {}), TIMEOUT_MS);
    let status: { StatusCode: number };
    try {
      status = (await container.wait()) as { StatusCode: number };
    } finally {
      clearTimeout(timer);
    }
    const logs = demux(
      (await container.logs({ stdout: true, stderr: true, follow: false })) as Buffer,
    );
    if (status.StatusCode !== 0)
      throw new SetupPyError(
        `reading setup.py with ast in a container of ${image} failed (exit ${status.StatusCode}): ${logs.stderr.trim().split("\n").slice(-3).join(" | ")}`,
        "list the dependencies in requirements.txt (or setup.cfg [options] install_requires)",
      );
    const facts = JSON.parse(logs.stdout.trim().split("\n").pop() ?? "{}") as SetupPyFacts;
    await mkdir(path.dirname(cacheFile), { recursive: true });
    const tmp = `${cacheFile}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(facts));
    await rename(tmp, cacheFile);
    return facts;
  } finally {
    await container.remove({ force: true }).catch(() => {});
  }
}
