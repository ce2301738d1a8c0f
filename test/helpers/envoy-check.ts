// Strict check of an Envoy bootstrap (YAML) against Envoy's own API protos, without an Envoy
// binary. The protos ship in @grpc/grpc-js-xds (deps/envoy-api, xds, googleapis,
// protoc-gen-validate); `buf build` (npm @bufbuild/buf) turns them into a descriptor set,
// cached under node_modules/.cache/iac-envoy/ (about 1 s to build, once per package version).
//
// 1. @bufbuild/protobuf `fromJson(Bootstrap)` parses the proto3 JSON mapping strictly: unknown
//    keys, unknown `@type`s in Any (resolved through the registry, bodies parsed too), bad enum
//    names, malformed durations all fail.
// 2. A walk over the parsed message applies the subset of protoc-gen-validate rules that matter
//    for a static bootstrap: required messages / oneofs, duration gt/gte/lt/lte, string
//    min_len/max_len/max_bytes (SNI <= 255 bytes), number ranges, enum defined_only/not_in
//    (san_type set), repeated min_items/max_items; and no deprecated field may be set.
// 3. `envoyValidate()` runs `envoy --mode validate` in the Envoy image (the integration test
//    envoy-validate.test.ts gets the image the way `iac` does; it never skips).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { cp, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  createFileRegistry,
  fromBinary,
  fromJson,
  getOption,
  hasOption,
  toJson,
  type DescExtension,
  type DescField,
  type DescMessage,
  type FileRegistry,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import { isReflectMessage, reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { anyUnpack, FileDescriptorSetSchema, type Any } from "@bufbuild/protobuf/wkt";
import { parse as parseYaml } from "yaml";

const run = promisify(execFile);
/** FeatureSet_FieldPresence.EXPLICIT (proto2 optional / proto3 `optional`). */
const EXPLICIT = 1;
const require = createRequire(import.meta.url);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** Bump when the way the descriptor set is built changes. */
const RECIPE = "2";

export const BOOTSTRAP = "envoy.config.bootstrap.v3.Bootstrap";

function packageDir(name: string): string {
  return path.dirname(require.resolve(`${name}/package.json`));
}

async function packageVersion(name: string): Promise<string> {
  const pkg = JSON.parse(await readFile(path.join(packageDir(name), "package.json"), "utf8"));
  return String(pkg.version);
}

async function protoFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(".proto")) {
      out.push(path.relative(dir, path.join(entry.parentPath, entry.name)));
    }
  }
  return out;
}

/**
 * The snapshot in @grpc/grpc-js-xds is partial (v2 protos and a few v3 ones miss imports):
 * keep only the files whose imports are all present, transitively, so `buf build` succeeds.
 */
async function pruneUnresolvable(roots: string[]): Promise<number> {
  const files = new Map<string, { abs: string; imports: string[] }>();
  for (const root of roots) {
    for (const rel of await protoFiles(root)) {
      const abs = path.join(root, rel);
      const text = await readFile(abs, "utf8");
      const imports = [...text.matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm)].map(
        (m) => m[1]!,
      );
      files.set(rel, { abs, imports });
    }
  }
  const keep = new Set(files.keys());
  for (let changed = true; changed;) {
    changed = false;
    for (const rel of [...keep]) {
      const missing = files
        .get(rel)!
        .imports.some((imp) => !imp.startsWith("google/protobuf/") && !keep.has(imp));
      if (missing) {
        keep.delete(rel);
        changed = true;
      }
    }
  }
  let dropped = 0;
  for (const [rel, { abs }] of files) {
    if (!keep.has(rel)) {
      await rm(abs);
      dropped++;
    }
  }
  return dropped;
}

async function buildDescriptorSet(out: string): Promise<void> {
  const deps = path.join(packageDir("@grpc/grpc-js-xds"), "deps");
  const ws = await mkdtemp(path.join(tmpdir(), "iac-envoy-protos-"));
  try {
    await cp(path.join(deps, "envoy-api"), path.join(ws, "envoy-api"), { recursive: true });
    await cp(path.join(deps, "xds"), path.join(ws, "xds"), { recursive: true });
    await cp(path.join(deps, "googleapis"), path.join(ws, "googleapis"), { recursive: true });
    // Only validate/ (its java/ and tests/ folders hold unrelated protos).
    await cp(path.join(deps, "protoc-gen-validate", "validate"), path.join(ws, "pgv", "validate"), {
      recursive: true,
    });
    // Known quirk: this validate.proto lacks StringRules.ignore_empty, which the envoy-api
    // snapshot uses (geoip_providers); add it so buf accepts those files.
    const validate = path.join(ws, "pgv", "validate", "validate.proto");
    const text = await readFile(validate, "utf8");
    if (!/ignore_empty\s*=\s*26/.test(text)) {
      const patched = text.replace(
        /(message StringRules\s*\{[\s\S]*?optional bool strict\s*=\s*25[^;]*;)/,
        "$1\n  optional bool ignore_empty = 26;",
      );
      if (patched === text)
        throw new Error("envoy-check: could not patch validate.proto (StringRules changed?)");
      await writeFile(validate, patched);
    }
    await pruneUnresolvable(["envoy-api", "xds", "pgv", "googleapis"].map((d) => path.join(ws, d)));
    await writeFile(
      path.join(ws, "buf.yaml"),
      "version: v2\nmodules:\n  - path: envoy-api\n  - path: xds\n  - path: pgv\n  - path: googleapis\n",
    );
    const buf = path.join(packageDir("@bufbuild/buf"), "bin", "buf");
    const tmpOut = `${out}.tmp-${process.pid}`;
    try {
      await run(buf, ["build", ws, "-o", tmpOut], { cwd: ws, maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`envoy-check: buf build failed: ${e.stderr || e.message}`);
    }
    await rename(tmpOut, out);
  } finally {
    await rm(ws, { recursive: true, force: true });
  }
}

/** Path of the cached descriptor set (built on first use). */
export async function envoyDescriptorSet(): Promise<string> {
  const key = createHash("sha256")
    .update(
      `${await packageVersion("@grpc/grpc-js-xds")}|${await packageVersion("@bufbuild/buf")}|${RECIPE}`,
    )
    .digest("hex")
    .slice(0, 16);
  const dir = path.join(ROOT, "node_modules", ".cache", "iac-envoy");
  const file = path.join(dir, `envoy-${key}.binpb`);
  try {
    await readFile(file);
    return file;
  } catch {
    await mkdir(dir, { recursive: true });
    await buildDescriptorSet(file);
    return file;
  }
}

let registryPromise: Promise<FileRegistry> | undefined;

export function envoyRegistry(): Promise<FileRegistry> {
  registryPromise ??= (async () => {
    const bytes = await readFile(await envoyDescriptorSet());
    return createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes));
  })();
  return registryPromise;
}

// ---------------------------------------------------------------- validate.rules subset

interface Rules {
  registry: FileRegistry;
  fieldRules: DescExtension;
  oneofRequired?: DescExtension;
}

type JsonObj = Record<string, JsonValue>;

function durationNanos(v: JsonValue | undefined): bigint | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") {
    const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(v);
    if (!m) return undefined;
    const n = BigInt(m[2]!) * 1_000_000_000n + BigInt((m[3] ?? "").padEnd(9, "0") || "0");
    return m[1] ? -n : n;
  }
  // validate.proto's Duration bounds are google.protobuf.Duration, JSON "1s" -- or an object.
  const o = v as JsonObj;
  return BigInt(String(o.seconds ?? 0)) * 1_000_000_000n + BigInt(Number(o.nanos ?? 0));
}

function fieldValue(r: ReflectMessage, field: DescField): unknown {
  return r.get(field);
}

/** A wrapper (google.protobuf.UInt32Value...) or scalar value as a number/bigint/string/boolean. */
function scalarOf(v: unknown): unknown {
  if (
    isReflectMessage(v) &&
    v.desc.typeName.startsWith("google.protobuf.") &&
    v.desc.typeName.endsWith("Value")
  ) {
    const f = v.desc.fields.find((x) => x.name === "value");
    return f ? v.get(f) : undefined;
  }
  return v;
}

function checkNumber(where: string, value: unknown, r: JsonObj, errors: string[]): void {
  if (value === undefined) return;
  const n = typeof value === "bigint" ? value : BigInt(Math.trunc(Number(value)));
  const num = (k: string) => (r[k] === undefined ? undefined : BigInt(String(r[k])));
  const [gt, gte, lt, lte] = [num("gt"), num("gte"), num("lt"), num("lte")];
  if (gt !== undefined && !(n > gt)) errors.push(`${where}: ${n} must be > ${gt}`);
  if (gte !== undefined && !(n >= gte)) errors.push(`${where}: ${n} must be >= ${gte}`);
  if (lt !== undefined && !(n < lt)) errors.push(`${where}: ${n} must be < ${lt}`);
  if (lte !== undefined && !(n <= lte)) errors.push(`${where}: ${n} must be <= ${lte}`);
}

function checkField(
  where: string,
  field: DescField,
  value: unknown,
  rules: JsonObj,
  errors: string[],
): void {
  if (rules.duration && field.fieldKind === "message" && isReflectMessage(value)) {
    const d = rules.duration as JsonObj;
    const json = toJson(value.desc, value.message) as JsonValue;
    const n = durationNanos(json)!;
    const cmp = (k: string, ok: (a: bigint, b: bigint) => boolean, text: string) => {
      const bound = durationNanos(d[k]);
      if (bound !== undefined && !ok(n, bound))
        errors.push(`${where}: duration ${String(json)} must be ${text} ${String(d[k])}`);
    };
    cmp("gt", (a, b) => a > b, ">");
    cmp("gte", (a, b) => a >= b, ">=");
    cmp("lt", (a, b) => a < b, "<");
    cmp("lte", (a, b) => a <= b, "<=");
  }
  if (rules.string) {
    const s = rules.string as JsonObj;
    const text = scalarOf(value);
    if (typeof text === "string" && !(s.ignoreEmpty && text === "")) {
      const chars = [...text].length;
      const bytes = Buffer.byteLength(text);
      if (s.minLen !== undefined && chars < Number(s.minLen))
        errors.push(`${where}: length must be >= ${s.minLen}`);
      if (s.maxLen !== undefined && chars > Number(s.maxLen))
        errors.push(`${where}: length must be <= ${s.maxLen}`);
      if (s.minBytes !== undefined && bytes < Number(s.minBytes))
        errors.push(`${where}: must be >= ${s.minBytes} bytes`);
      if (s.maxBytes !== undefined && bytes > Number(s.maxBytes))
        errors.push(`${where}: must be <= ${s.maxBytes} bytes`);
    }
  }
  for (const kind of [
    "uint32",
    "uint64",
    "int32",
    "int64",
    "sint32",
    "sint64",
    "fixed32",
    "fixed64",
  ]) {
    if (rules[kind]) checkNumber(where, scalarOf(value), rules[kind] as JsonObj, errors);
  }
  if (rules.double || rules.float) {
    const r = (rules.double ?? rules.float) as JsonObj;
    const v = Number(scalarOf(value));
    if (r.gt !== undefined && !(v > Number(r.gt))) errors.push(`${where}: ${v} must be > ${r.gt}`);
    if (r.gte !== undefined && !(v >= Number(r.gte)))
      errors.push(`${where}: ${v} must be >= ${r.gte}`);
    if (r.lte !== undefined && !(v <= Number(r.lte)))
      errors.push(`${where}: ${v} must be <= ${r.lte}`);
  }
  if (rules.enum && field.fieldKind === "enum") {
    const e = rules.enum as JsonObj;
    const v = Number(value);
    if (e.definedOnly && !field.enum.values.some((x) => x.number === v))
      errors.push(`${where}: undefined enum value ${v}`);
    if (Array.isArray(e.notIn) && e.notIn.map(Number).includes(v)) {
      const name = field.enum.values.find((x) => x.number === v)?.name ?? v;
      errors.push(`${where}: must be set (${name} is not allowed)`);
    }
  }
}

function walk(rm: ReflectMessage, where: string, ctx: Rules, errors: string[]): void {
  if (rm.desc.typeName === "google.protobuf.Any") {
    const any = rm.message as Any;
    const inner = anyUnpack(any, ctx.registry) as Message | undefined;
    const desc = ctx.registry.getMessage(any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1));
    if (!inner || !desc) {
      errors.push(`${where}: cannot resolve @type ${any.typeUrl}`);
      return;
    }
    walk(reflect(desc, inner), `${where}<${desc.typeName}>`, ctx, errors);
    return;
  }
  for (const oneof of rm.desc.oneofs) {
    if (
      ctx.oneofRequired &&
      hasOption(oneof, ctx.oneofRequired) &&
      getOption(oneof, ctx.oneofRequired)
    ) {
      if (!oneof.fields.some((f) => rm.isSet(f)))
        errors.push(`${where}: one of ${oneof.name} is required`);
    }
  }
  for (const field of rm.desc.fields) {
    const at = `${where}.${field.name}`;
    const set = rm.isSet(field);
    let rules: JsonObj | undefined;
    if (hasOption(field, ctx.fieldRules)) {
      const value = getOption(field, ctx.fieldRules) as Message;
      rules = toJson(ctx.fieldRules.message as DescMessage, value, {
        registry: ctx.registry,
      }) as JsonObj;
    }
    if (rules) {
      const msgRules = rules.message as JsonObj | undefined;
      const required =
        Boolean(msgRules?.required) || Boolean((rules.duration as JsonObj | undefined)?.required);
      // Rules on a oneof member apply only when that member is the one set (as in PGV).
      if (required && !set && !field.oneof) errors.push(`${at}: is required`);
      const rep = rules.repeated as JsonObj | undefined;
      if (rep && field.fieldKind === "list") {
        const len = set ? (fieldValue(rm, field) as { size: number }).size : 0;
        if (rep.minItems !== undefined && len < Number(rep.minItems))
          errors.push(`${at}: needs >= ${rep.minItems} items`);
        if (rep.maxItems !== undefined && len > Number(rep.maxItems))
          errors.push(`${at}: needs <= ${rep.maxItems} items`);
      }
    }
    if (!set) {
      // proto3 scalars and enums always have a value (the zero default): their rules apply
      // too, e.g. `san_type` (enum not_in: [0]) or `stat_prefix` (string min_len: 1).
      const implicit = (field.fieldKind === "scalar" || field.fieldKind === "enum") && !field.oneof;
      if (rules && implicit && field.presence !== EXPLICIT)
        checkField(at, field, rm.get(field), rules, errors);
      continue;
    }
    // Envoy warns on deprecated fields and rejects them once they turn fatal-by-default.
    if (field.deprecated) errors.push(`${at}: is deprecated`);
    const value = fieldValue(rm, field);
    if (field.fieldKind === "list") {
      let i = 0;
      const itemRules = (rules?.repeated as JsonObj | undefined)?.items as JsonObj | undefined;
      for (const item of value as Iterable<unknown>) {
        if (itemRules) checkField(`${at}[${i}]`, field, item, itemRules, errors);
        if (isReflectMessage(item)) walk(item, `${at}[${i}]`, ctx, errors);
        i++;
      }
      continue;
    }
    if (field.fieldKind === "map") {
      for (const [k, v] of value as Iterable<[unknown, unknown]>) {
        if (isReflectMessage(v)) walk(v, `${at}[${String(k)}]`, ctx, errors);
      }
      continue;
    }
    if (rules) checkField(at, field, value, rules, errors);
    if (isReflectMessage(value)) walk(value, at, ctx, errors);
  }
}

export interface EnvoyCheckResult {
  ok: boolean;
  errors: string[];
  /** The parsed Bootstrap (when the JSON mapping parse succeeded). */
  message?: Message;
}

/** Checks a YAML (or JSON) bootstrap strictly; never throws for an invalid config. */
export async function checkEnvoyConfig(yamlText: string): Promise<EnvoyCheckResult> {
  const registry = await envoyRegistry();
  const schema = registry.getMessage(BOOTSTRAP);
  if (!schema) throw new Error(`envoy-check: ${BOOTSTRAP} is not in the descriptor set`);
  let json: JsonValue;
  try {
    json = parseYaml(yamlText) as JsonValue;
  } catch (err) {
    return { ok: false, errors: [`YAML: ${(err as Error).message}`] };
  }
  let message: Message;
  try {
    message = fromJson(schema, json, { registry, ignoreUnknownFields: false });
  } catch (err) {
    return { ok: false, errors: [`proto JSON: ${(err as Error).message}`] };
  }
  const fieldRules = registry.getExtension("validate.rules");
  if (!fieldRules)
    throw new Error("envoy-check: validate.rules extension missing from the descriptor set");
  const ctx: Rules = {
    registry,
    fieldRules,
    oneofRequired: registry.getExtension("validate.required"),
  };
  const errors: string[] = [];
  walk(reflect(schema, message), "bootstrap", ctx, errors);
  return { ok: errors.length === 0, errors, message };
}

// ---------------------------------------------------------------- envoy --mode validate

/**
 * `envoy --mode validate` in the image (no network, read-only, its non-root user). The config
 * references cert files, so the caller passes a folder to mount at certDir.
 */
export async function envoyValidate(
  image: string,
  configFile: string,
  certDirHost: string,
  certDir = "/etc/iac/certs",
): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run(
      "docker",
      [
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "101:101",
        "--label",
        "io.iac.test=1",
        "-v",
        `${path.resolve(configFile)}:/etc/envoy/envoy.yaml:ro`,
        "-v",
        `${path.resolve(certDirHost)}:${certDir}:ro`,
        "--entrypoint",
        "envoy",
        image,
        "--mode",
        "validate",
        "-c",
        "/etc/envoy/envoy.yaml",
      ],
      { timeout: 120_000, maxBuffer: 8 * 1024 * 1024 },
    );
    return { ok: true, output: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ""}${e.stderr ?? ""}` || e.message };
  }
}

// `npx tsx test/helpers/envoy-check.ts FILE...`: check rendered configs by hand.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let failed = false;
  for (const file of process.argv.slice(2)) {
    const result = await checkEnvoyConfig(await readFile(file, "utf8"));
    console.log(`${file}: ${result.ok ? "OK" : "INVALID"}`);
    for (const e of result.errors) console.log(`  ${e}`);
    failed ||= !result.ok;
  }
  process.exitCode = failed ? 1 : 0;
}
