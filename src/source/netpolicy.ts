// Which network addresses the control plane may be sent to by a slug. A git+https:// slug
// names an arbitrary host, so without a rule an admin (or a repos file from elsewhere) could
// point the server at the cloud metadata service (169.254.169.254), the host's loopback or a
// private network. Such targets are refused unless the host is listed in
// IAC_ALLOWED_GIT_HOSTS; the address checked is then pinned for git (no DNS rebinding).
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { type Ctx, FetchError } from "./context.js";

function v4(ip: string): number[] {
  return ip.split(".").map(Number);
}

/** Loopback, private, link-local, CGNAT, unspecified, multicast or otherwise not public. */
export function isInternalAddress(ip: string): boolean {
  const fam = isIP(ip);
  if (fam === 4) {
    const [a, b] = v4(ip) as [number, number];
    return (
      a === 0 || // "this network", 0.0.0.0
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b <= 127) || // CGNAT
      (a === 169 && b === 254) || // link-local, cloud metadata
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 192 && b === 0) || // IETF protocol assignments, 192.0.0.0/24 (and 192.0.2.0/24 doc)
      (a === 198 && (b === 18 || b === 19)) || // benchmarking
      a >= 224 // multicast, reserved, broadcast
    );
  }
  if (fam === 6) {
    const s = ip.toLowerCase();
    if (s === "::" || s === "::1") return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(s);
    if (mapped) return isInternalAddress(mapped[1]!);
    const first = parseInt(s.split(":")[0] || "0", 16);
    return (
      (first & 0xfe00) === 0xfc00 || // unique local fc00::/7
      (first & 0xffc0) === 0xfe80 || // link-local fe80::/10
      (first & 0xff00) === 0xff00 || // multicast
      s.startsWith("64:ff9b:") || // NAT64 (can reach IPv4 internals)
      s.startsWith("2002:") // 6to4
    );
  }
  return true; // not an IP at all: refuse
}

export class ForbiddenHostError extends Error {
  override name = "ForbiddenHostError";
}

/**
 * Resolves `host` and checks every address. Returns the address to pin, or throws
 * ForbiddenHostError naming the host and the address. Hosts in `allowed` pass unchecked.
 */
export async function checkHost(
  host: string,
  allowed: readonly string[],
  resolve: (h: string) => Promise<string[]> = async (h) =>
    (await lookup(h, { all: true, verbatim: true })).map((a) => a.address),
): Promise<string | undefined> {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (allowed.some((a) => a.toLowerCase() === bare)) return undefined;
  const addresses = isIP(bare) ? [bare] : await resolve(bare);
  if (addresses.length === 0) throw new ForbiddenHostError(`${host} does not resolve`);
  const bad = addresses.find(isInternalAddress);
  if (bad)
    throw new ForbiddenHostError(
      `${host} is an internal address (${bad}: loopback, private, link-local or reserved)`,
    );
  return addresses[0];
}

/** git+ slugs: refuse internal targets (unless allowed), pin the checked address for git. */
export async function hostPolicy(ctx: Ctx, location: string): Promise<string[]> {
  const url = new URL(location);
  let addr: string | undefined;
  try {
    addr = await checkHost(url.hostname, ctx.config.fetch.allowedGitHosts);
  } catch (err) {
    if (err instanceof ForbiddenHostError)
      throw new FetchError(
        "forbidden-host",
        `${ctx.slug.raw}: refusing to fetch from ${err.message}`,
        "internal addresses are refused so a slug cannot reach services on the server's network; " +
          "add the host to IAC_ALLOWED_GIT_HOSTS if it is a git server you trust",
      );
    throw new FetchError(
      "network",
      `${ctx.slug.raw}: cannot resolve ${url.hostname}: ${(err as Error).message}`,
    );
  }
  if (!addr || isIP(url.hostname.replace(/^\[|\]$/g, ""))) return [];
  const port = url.port || (url.protocol === "http:" ? "80" : "443");
  const pinned = isIP(addr) === 6 ? `[${addr}]` : addr;
  return ["-c", `http.curloptResolve=${url.hostname}:${port}:${pinned}`];
}
