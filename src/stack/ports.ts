// Stable host ports per service: allocated once on loopback, persisted in ports.json, so a
// redeploy maps each service to the same 127.0.0.1 port and Terraform sees no change.
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { writeFileAtomic } from "../platform/fs.js";

export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function readPorts(file: string): Promise<Record<string, number>> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as Record<string, number>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw err;
  }
}

/**
 * Returns a port per service, keeping known ones (ports.json first, then `running`: the ports
 * the project's containers publish now); new services get a free loopback port.
 */
export async function assignPorts(
  file: string,
  services: string[],
  running: Record<string, number> = {},
): Promise<Record<string, number>> {
  const known = { ...running, ...(await readPorts(file)) };
  const taken = new Set(Object.values(known));
  const out: Record<string, number> = {};
  for (const name of services) {
    let port = known[name];
    while (port === undefined || (!(name in known) && taken.has(port))) {
      port = await freeLoopbackPort();
    }
    out[name] = port;
    taken.add(port);
  }
  await writeFileAtomic(file, JSON.stringify({ ...known, ...out }, null, 2) + "\n");
  return out;
}
