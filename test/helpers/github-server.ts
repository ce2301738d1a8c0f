// A local HTTP server speaking the parts of GitHub the intake uses, over real git repos:
//   API (apiUrl = <base>/api/v3, GitHub Enterprise style):
//     GET /repos/{o}/{r}                    200 {full_name, default_branch} | 404
//     GET /repos/{o}/{r}/commits/{ref}      Accept: application/vnd.github.sha -> bare SHA,
//                                           else {sha}; 422 unknown ref; 404 unknown/private repo
//     GET /repos/{o}/{r}/tarball/{ref}      302 -> <base>/codeload/{o}/{r}/legacy.tar.gz/{sha}
//   codeload: a real `git archive --prefix=<o>-<r>-<sha7>/` tar.gz (or an override's bytes)
//   git smart HTTP (serverUrl = <base>/git): /{o}/{r}.git/... through `git http-backend` (CGI)
// Private repos answer 404 without a token and 401 with a wrong one, as GitHub does.
// Every request is logged so tests can assert how many were made (zero on a cache hit).
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { mkdir, rm, symlink } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

export interface LoggedRequest {
  method: string;
  path: string;
  status: number;
  /** "api" | "codeload" | "git" */
  kind: string;
}

export type Injected = { status: number; body?: string; headers?: Record<string, string> } | "hang";

export interface GitHubServer {
  base: string;
  apiUrl: string;
  serverUrl: string;
  requests: LoggedRequest[];
  /** Number of logged requests, optionally only those of one kind or matching a path pattern. */
  count(filter?: { kind?: string; path?: RegExp }): number;
  reset(): void;
  addRepo(fullName: string, dir: string, opts?: { private?: boolean }): Promise<void>;
  /** Serve these bytes for the repo's tarball instead of `git archive` (hostile archives). */
  tarballOverride: Map<string, Buffer>;
  /** Return a canned answer (or hang) for matching requests before normal handling. */
  inject?: (req: { method: string; path: string; kind: string }) => Injected | undefined;
  close(): Promise<void>;
}

interface RepoEntry {
  dir: string;
  private: boolean;
}

function gitOut(dir: string, args: string[]): string {
  return execFileSync("git", args, {
    cwd: dir,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

function tokenFrom(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value = ""] = header.split(" ", 2);
  if (/^(bearer|token)$/i.test(scheme ?? "")) return value;
  if (/^basic$/i.test(scheme ?? ""))
    return Buffer.from(value, "base64").toString("utf8").split(":").slice(1).join(":");
  return undefined;
}

export async function startGitHubServer(
  opts: { token?: string; repos?: Record<string, string> } = {},
): Promise<GitHubServer> {
  const projectRoot = mkdtempSync(path.join(tmpdir(), "iac-ghserver-"));
  const repos = new Map<string, RepoEntry>();
  const archives = new Map<string, Buffer>();
  const requests: LoggedRequest[] = [];
  const hanging = new Set<http.ServerResponse>();

  const send = (
    res: http.ServerResponse,
    status: number,
    body: string | Buffer,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { "content-length": String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  const json = (res: http.ServerResponse, status: number, value: unknown) =>
    send(res, status, JSON.stringify(value), { "content-type": "application/json; charset=utf-8" });

  /** null = answered (404/401 sent). */
  const authorize = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    full: string,
    kind: string,
  ): RepoEntry | null => {
    const repo = repos.get(full);
    const given = tokenFrom(req.headers.authorization);
    if (given !== undefined && opts.token !== undefined && given !== opts.token) {
      if (kind === "git")
        send(res, 401, "Authentication failed", { "www-authenticate": 'Basic realm="GitHub"' });
      else json(res, 401, { message: "Bad credentials" });
      return null;
    }
    if (!repo || (repo.private && given !== opts.token)) {
      if (kind === "git" && repo?.private)
        send(res, 401, "Authentication required", { "www-authenticate": 'Basic realm="GitHub"' });
      else if (kind === "git") send(res, 404, "Repository not found.");
      else json(res, 404, { message: "Not Found" });
      return null;
    }
    return repo;
  };

  const resolve = (repo: RepoEntry, ref: string): string | undefined => {
    try {
      return gitOut(repo.dir, [
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        `${ref}^{commit}`,
      ]);
    } catch {
      return undefined;
    }
  };

  const handleApi = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    p: string,
    base: string,
  ) => {
    const m = /^\/repos\/([^/]+)\/([^/]+)(?:\/(commits|tarball)\/(.+))?$/.exec(p);
    if (!m) return json(res, 404, { message: "Not Found" });
    const full = `${m[1]}/${m[2]}`;
    const repo = authorize(req, res, full, "api");
    if (!repo) return;
    if (!m[3]) return json(res, 200, { full_name: full, default_branch: "main" });
    const ref = decodeURIComponent(m[4]!);
    const sha = resolve(repo, ref);
    if (!sha) return json(res, 422, { message: `No commit found for SHA: ${ref}` });
    if (m[3] === "commits") {
      if ((req.headers.accept ?? "").includes("application/vnd.github.sha"))
        return send(res, 200, sha, { "content-type": "text/plain" });
      return json(res, 200, { sha });
    }
    res.writeHead(302, {
      location: `${base}/codeload/${full}/legacy.tar.gz/${sha}`,
      "content-length": "0",
    });
    res.end();
  };

  const handleCodeload = (res: http.ServerResponse, p: string) => {
    const m = /^\/([^/]+)\/([^/]+)\/legacy\.tar\.gz\/([0-9a-f]{40})$/.exec(p);
    const full = m ? `${m[1]}/${m[2]}` : "";
    const repo = repos.get(full);
    if (!m || !repo) return send(res, 404, "Not Found");
    const override = server.tarballOverride.get(full);
    if (override) return send(res, 200, override, { "content-type": "application/x-gzip" });
    const sha = m[3]!;
    const key = `${full}@${sha}`;
    let tgz = archives.get(key);
    if (!tgz) {
      try {
        tgz = execFileSync(
          "git",
          ["archive", "--format=tar.gz", `--prefix=${m[1]}-${m[2]}-${sha.slice(0, 7)}/`, sha],
          {
            cwd: repo.dir,
            maxBuffer: 512 * 1024 * 1024,
            stdio: ["ignore", "pipe", "pipe"],
          },
        );
      } catch {
        return send(res, 404, "Not Found");
      }
      archives.set(key, tgz);
    }
    send(res, 200, tgz, { "content-type": "application/x-gzip" });
  };

  const handleGit = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    p: string,
    query: string,
    body: Buffer,
  ) => {
    const m = /^\/([^/]+)\/([^/]+?)(?:\.git)?(\/.*)$/.exec(p);
    if (!m) return send(res, 404, "Not Found");
    const full = `${m[1]}/${m[2]}`;
    if (!authorize(req, res, full, "git")) return;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: `/${full}.git${m[3]}`,
      REQUEST_METHOD: req.method ?? "GET",
      QUERY_STRING: query,
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      CONTENT_LENGTH: String(body.length),
      REMOTE_ADDR: "127.0.0.1",
      GIT_CONFIG_NOSYSTEM: "1",
      HOME: projectRoot,
      GIT_CONFIG_COUNT: "2",
      GIT_CONFIG_KEY_0: "uploadpack.allowAnySHA1InWant",
      GIT_CONFIG_VALUE_0: "true",
      GIT_CONFIG_KEY_1: "safe.directory",
      GIT_CONFIG_VALUE_1: "*",
    };
    const proto = req.headers["git-protocol"];
    if (typeof proto === "string") env.HTTP_GIT_PROTOCOL = proto;
    const enc = req.headers["content-encoding"];
    if (typeof enc === "string") env.HTTP_CONTENT_ENCODING = enc;
    const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.resume();
    // http-backend may exit before reading the request body (a refused or malformed request):
    // the EPIPE that follows is that answer arriving early, not a server fault.
    child.stdin.on("error", () => undefined);
    child.stdin.end(body);
    child.on("close", () => {
      const all = Buffer.concat(out);
      let split = all.indexOf("\r\n\r\n");
      let sepLen = 4;
      if (split < 0) {
        split = all.indexOf("\n\n");
        sepLen = 2;
      }
      const head = all.subarray(0, Math.max(split, 0)).toString("utf8");
      const payload = split >= 0 ? all.subarray(split + sepLen) : Buffer.alloc(0);
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.split(/\r?\n/)) {
        const i = line.indexOf(":");
        if (i < 0) continue;
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === "status") status = Number(v.split(" ")[0]);
        else headers[k] = v;
      }
      send(res, status, payload, headers);
    });
  };

  const httpServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      const p = url.pathname;
      const kind = p.startsWith("/api/v3/")
        ? "api"
        : p.startsWith("/codeload/")
          ? "codeload"
          : p.startsWith("/git/")
            ? "git"
            : "other";
      const entry: LoggedRequest = {
        method: req.method ?? "GET",
        path: p + url.search,
        status: 0,
        kind,
      };
      requests.push(entry);
      res.on("finish", () => (entry.status = res.statusCode));
      const injected = server.inject?.({ method: entry.method, path: entry.path, kind });
      if (injected === "hang") {
        hanging.add(res);
        return;
      }
      if (injected) return send(res, injected.status, injected.body ?? "", injected.headers);
      const base = server.base;
      if (kind === "api") return handleApi(req, res, p.slice("/api/v3".length), base);
      if (kind === "codeload") return handleCodeload(res, p.slice("/codeload".length));
      if (kind === "git")
        return handleGit(
          req,
          res,
          p.slice("/git".length),
          url.search.slice(1),
          Buffer.concat(chunks),
        );
      send(res, 404, "Not Found");
    });
  });
  await new Promise<void>((r) => httpServer.listen(0, "127.0.0.1", r));
  const port = (httpServer.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;

  const server: GitHubServer = {
    base,
    apiUrl: `${base}/api/v3`,
    serverUrl: `${base}/git`,
    requests,
    count: (filter = {}) =>
      requests.filter(
        (r) =>
          (!filter.kind || r.kind === filter.kind) && (!filter.path || filter.path.test(r.path)),
      ).length,
    reset: () => void requests.splice(0),
    async addRepo(fullName, dir, o = {}) {
      repos.set(fullName, { dir, private: o.private ?? false });
      const link = path.join(projectRoot, `${fullName}.git`);
      await mkdir(path.dirname(link), { recursive: true });
      await rm(link, { force: true });
      await symlink(path.join(dir, ".git"), link);
    },
    tarballOverride: new Map(),
    async close() {
      for (const res of hanging) res.destroy();
      httpServer.closeAllConnections();
      await new Promise<void>((r) => httpServer.close(() => r()));
      await rm(projectRoot, { recursive: true, force: true });
    },
  };
  for (const [name, dir] of Object.entries(opts.repos ?? {})) await server.addRepo(name, dir);
  return server;
}

/** Aliases (the names other tests use). */
export const startGithubServer = startGitHubServer;
export type GithubServer = GitHubServer;
