// Resource limits of an app container: memory (hard, no extra swap), CPUs and processes.
// Defaults keep one runaway app from starving the host and its neighbours; a service can
// raise or lower them in the repos file (`resources: {memory: 1g, cpus: 2, pids: 512}`).
import { UsageError } from "../kernel/errors.js";
import type { Resources } from "../kernel/types.js";

export type { Resources };

export const DEFAULT_RESOURCES: Resources = { memoryMb: 512, cpus: 1, pids: 256 };

const LIMITS = {
  memoryMb: [16, 65_536],
  cpus: [0.1, 64],
  pids: [16, 32_768],
} as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** "512m", "1g", "256M", or a number of MiB. */
export function parseMemory(v: unknown, where: string): number {
  const m =
    typeof v === "number"
      ? [String(v), String(v), "m"]
      : /^(\d+)\s*([mMgG])i?[bB]?$/.exec(String(v));
  if (!m || (typeof v !== "number" && typeof v !== "string"))
    throw new UsageError(
      `${where}: resources.memory ${JSON.stringify(v)} is not a size`,
      "write it like 512m or 1g (MiB / GiB)",
    );
  const n = Number(m[1]) * (m[2]!.toLowerCase() === "g" ? 1024 : 1);
  return n;
}

function inRange(key: keyof Resources, n: number, where: string, shown: string): number {
  const [lo, hi] = LIMITS[key];
  if (!Number.isFinite(n) || n < lo || n > hi)
    throw new UsageError(`${where}: resources.${shown} must be between ${lo} and ${hi}`);
  return n;
}

/** The service's limits: defaults overridden by the repos file's `resources:` mapping. */
export function parseResources(value: unknown, where: string): Resources {
  if (value === undefined || value === null) return { ...DEFAULT_RESOURCES };
  if (!isRecord(value))
    throw new UsageError(`${where}: resources must be a mapping {memory, cpus, pids}`);
  const out = { ...DEFAULT_RESOURCES };
  for (const [k, v] of Object.entries(value)) {
    if (k === "memory")
      out.memoryMb = inRange("memoryMb", parseMemory(v, where), where, "memory (MiB)");
    else if (k === "cpus")
      out.cpus = inRange("cpus", typeof v === "number" ? v : Number.NaN, where, "cpus");
    else if (k === "pids")
      out.pids = inRange("pids", Number.isInteger(v) ? (v as number) : Number.NaN, where, "pids");
    else
      throw new UsageError(`${where}: unknown key resources.${k}`, "allowed: memory, cpus, pids");
  }
  return out;
}

/**
 * `cpus` as the Docker provider reads it back (its nanoInt64ToDecimalString): "1.0", "0.5",
 * "1.25". Terraform compares strings, so "1" would differ from the "1.0" it reads and force a
 * replacement on every deploy.
 */
export function providerCpus(cpus: number): string {
  const nano = BigInt(Math.round(cpus * 1e9));
  const whole = nano / 1_000_000_000n;
  const frac = (nano % 1_000_000_000n).toString().padStart(9, "0");
  const str = `${whole}.${frac}`;
  // Go's big.Rat FloatString(1): rounded to one decimal.
  if ((str.match(/0/g) ?? []).length === 9) return (Math.round(cpus * 10) / 10).toFixed(1);
  return str.replace(/0+$/, "");
}

/** How `iac inspect` and the docs show them (the repos file's own spelling). */
export function showResources(r: Resources): { memory: string; cpus: number; pids: number } {
  return { memory: `${r.memoryMb}m`, cpus: r.cpus, pids: r.pids };
}
