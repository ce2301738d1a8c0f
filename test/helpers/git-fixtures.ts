// Fixture git repositories built on the fly in temp dirs:
//   const repo = await createGitRepo({ "main.py": "print('hi')", "run.sh": { content: "...", mode: 0o755 } });
//   repo.dir, repo.commit; await repo.commit_({ "x.py": "..." }) adds a commit; await repo.cleanup().
// Commits use fixed author/committer dates, so the same files give the same SHA every run.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { chmod, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

export type FixtureFile =
  string | { content: string | Buffer; mode?: number } | { symlink: string };
export type FixtureFiles = Record<string, FixtureFile>;

export interface FixtureRepo {
  dir: string;
  /** HEAD commit after the last commit. */
  commit: string;
  /** Writes files (and deletes paths mapped to null), commits, returns the new SHA. */
  addCommit(files: Record<string, FixtureFile | null>, message?: string): Promise<string>;
  tag(name: string, ref?: string): void;
  branch(name: string, ref?: string): void;
  git(...args: string[]): string;
  cleanup(): Promise<void>;
}

const DATE = "2024-01-01T00:00:00Z";

function gitIn(dir: string, args: string[]): string {
  return execFileSync("git", args, {
    cwd: dir,
    encoding: "utf8",
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dir,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_AUTHOR_NAME: "Fixture",
      GIT_AUTHOR_EMAIL: "fixture@example.invalid",
      GIT_COMMITTER_NAME: "Fixture",
      GIT_COMMITTER_EMAIL: "fixture@example.invalid",
      GIT_AUTHOR_DATE: DATE,
      GIT_COMMITTER_DATE: DATE,
    },
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

export async function writeFixtureFiles(
  dir: string,
  files: Record<string, FixtureFile | null>,
): Promise<void> {
  for (const [rel, spec] of Object.entries(files)) {
    const full = path.join(dir, rel);
    if (spec === null) {
      await rm(full, { recursive: true, force: true });
      continue;
    }
    await mkdir(path.dirname(full), { recursive: true });
    if (typeof spec === "string") await writeFile(full, spec);
    else if ("symlink" in spec) await symlink(spec.symlink, full);
    else {
      await writeFile(full, spec.content);
      if (spec.mode !== undefined) await chmod(full, spec.mode);
    }
  }
}

/** Creates a git repo (branch `main`) with one commit holding `files`. */
export async function createGitRepo(
  files: FixtureFiles,
  opts: { dir?: string; message?: string } = {},
): Promise<FixtureRepo> {
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), "iac-fixture-"));
  await mkdir(dir, { recursive: true });
  const git = (...args: string[]) => gitIn(dir, args);
  git("init", "--quiet", "--initial-branch=main");
  git("config", "core.fileMode", "true");
  await writeFixtureFiles(dir, files);
  git("add", "--all");
  git("commit", "--quiet", "--allow-empty", "-m", opts.message ?? "fixture");
  const repo: FixtureRepo = {
    dir,
    commit: git("rev-parse", "HEAD"),
    async addCommit(more, message = "update") {
      await writeFixtureFiles(dir, more);
      git("add", "--all");
      git("commit", "--quiet", "--allow-empty", "-m", message);
      repo.commit = git("rev-parse", "HEAD");
      return repo.commit;
    },
    tag: (name, ref = "HEAD") => void git("tag", name, ref),
    branch: (name, ref = "HEAD") => void git("branch", name, ref),
    git,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
  return repo;
}

/** Alias (the name other tests and benches use). */
export const makeGitRepo = createGitRepo;
