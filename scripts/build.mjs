// The compiled CLI: src/**/*.ts -> dist/**/*.js (esbuild, one file per source file, so dist/
// mirrors src/ at the same depth and paths relative to import.meta.url keep working), plus
// dist/.build.json, which records a hash of the sources and each file's size and mtime.
//
// `npm run build` / `node scripts/build.mjs [--if-stale] [--quiet]` builds; bin/iac.js imports
// `freshness()` to refuse or rebuild a stale build before running it. Type checking is
// `make lint` (tsc); this only strips types. Plain JavaScript: it must run without a build.
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SRC = path.join(ROOT, "src");
const DIST = path.join(ROOT, "dist");
const MANIFEST = ".build.json";
// The recipe is part of the hash: a build made by another version of this script is stale.
const RECIPE = fileURLToPath(import.meta.url);

/** Source files (relative to src/, sorted) with size and mtime. */
function listSources() {
  const out = [];
  const walk = (dir, rel) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(dir, e.name), r);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) {
        const st = statSync(path.join(dir, e.name));
        out.push({ rel: r, size: st.size, mtimeMs: st.mtimeMs });
      }
    }
  };
  walk(SRC, "");
  out.push({ rel: "../scripts/build.mjs", ...pick(statSync(RECIPE)) });
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

function pick(st) {
  return { size: st.size, mtimeMs: st.mtimeMs };
}

function contentHash(files) {
  const h = createHash("sha256");
  for (const f of files) {
    h.update(f.rel);
    h.update("\0");
    h.update(readFileSync(path.join(SRC, f.rel)));
    h.update("\0");
  }
  return h.digest("hex");
}

function readManifest() {
  try {
    return JSON.parse(readFileSync(path.join(DIST, MANIFEST), "utf8"));
  } catch {
    return undefined;
  }
}

function writeManifest(dir, manifest) {
  const file = path.join(dir, MANIFEST);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(manifest) + "\n");
  renameSync(tmp, file);
}

/**
 * Is dist/ the build of the current src/? Fast path: every source's size and mtime equal the
 * manifest's (a few stat calls). Otherwise the content hash decides (a checkout that only
 * touched mtimes is still fresh; the manifest is then refreshed so the next start is fast).
 * Returns { fresh: true } or { fresh: false, reason, changed: string[] }.
 */
export function freshness() {
  const manifest = readManifest();
  if (!manifest || typeof manifest.hash !== "string" || !manifest.files) {
    return { fresh: false, reason: "dist/ has no build (run `npm run build`)", changed: [] };
  }
  const files = listSources();
  const changed = [];
  for (const f of files) {
    const m = manifest.files[f.rel];
    if (!m || m[0] !== f.size || m[1] !== f.mtimeMs) changed.push(f.rel);
  }
  const removed = Object.keys(manifest.files).filter((rel) => !files.some((f) => f.rel === rel));
  if (changed.length === 0 && removed.length === 0) return { fresh: true };
  const hash = contentHash(files);
  if (hash === manifest.hash) {
    try {
      writeManifest(DIST, { ...manifest, files: statTable(files) });
    } catch {
      // read-only checkout: still fresh, just not faster next time
    }
    return { fresh: true };
  }
  const names = [...changed, ...removed.map((r) => `${r} (removed)`)].map((r) =>
    r.startsWith("../") ? r.slice(3) : `src/${r}`,
  );
  return { fresh: false, reason: "dist/ is older than src/", changed: names };
}

function statTable(files) {
  return Object.fromEntries(files.map((f) => [f.rel, [f.size, f.mtimeMs]]));
}

/**
 * Build dist/ from src/ into a fresh folder, then swap it in (a process starting meanwhile
 * sees the old build or none, never half of one). Returns the elapsed milliseconds.
 */
export async function build() {
  const t0 = performance.now();
  let esbuild;
  try {
    esbuild = await import("esbuild");
  } catch (err) {
    throw new Error(
      `cannot build dist/: esbuild is not installed (${err.message}); run \`npm ci\` in ${ROOT}`,
    );
  }
  const files = listSources();
  const hash = contentHash(files);
  const tag = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const tmp = path.join(ROOT, `.dist-build-${tag}`);
  mkdirSync(tmp, { recursive: true });
  try {
    await esbuild.build({
      entryPoints: files.filter((f) => !f.rel.startsWith("../")).map((f) => path.join(SRC, f.rel)),
      outdir: tmp,
      outbase: SRC,
      format: "esm",
      platform: "node",
      target: "node20",
      // No source maps: the output keeps the source's layout and names (types stripped only).
      sourcemap: false,
      logLevel: "silent",
    });
    writeManifest(tmp, {
      hash,
      builtAt: new Date().toISOString(),
      files: statTable(files),
    });
    const old = path.join(ROOT, `.dist-old-${tag}`);
    let moved = false;
    try {
      renameSync(DIST, old);
      moved = true;
    } catch (err) {
      if (err.code !== "ENOENT") throw err;
    }
    try {
      renameSync(tmp, DIST);
    } catch (err) {
      // Another build won the race in between: its dist/ is as good as ours.
      if (err.code !== "ENOTEMPTY" && err.code !== "EEXIST") throw err;
    }
    if (moved) rmSync(old, { recursive: true, force: true });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return performance.now() - t0;
}

async function cli(argv) {
  const ifStale = argv.includes("--if-stale");
  const quiet = argv.includes("--quiet");
  if (ifStale) {
    const f = freshness();
    if (f.fresh) {
      if (!quiet) process.stderr.write("[build] dist/ is up to date\n");
      return;
    }
  }
  const ms = await build();
  if (!quiet) process.stderr.write(`[build] src/ -> dist/ in ${(ms / 1000).toFixed(2)} s\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === RECIPE) {
  if (!existsSync(SRC)) {
    process.stderr.write(`[build] no src/ in ${ROOT}\n`);
    process.exit(2);
  }
  cli(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`[build] ${err.message}\n`);
    process.exit(1);
  });
}
