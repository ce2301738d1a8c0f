// What a deploy would do to each service, in Terraform's vocabulary, computed from the stack
// Terraform last applied (terraform.tfvars.json), the one a deploy would apply now, and the
// resources `terraform plan` says it would touch (which also catches drift made outside iac).
import type { StackService } from "../stack/tfvars.js";

export type ActionKind = "new" | "update" | "replace" | "unchanged" | "remove" | "failed";

export interface PlannedAction {
  kind: ActionKind;
  /** Human form, e.g. "~ update (commit a3196c → dee6c7)". */
  text: string;
  reason?: string;
}

const SYMBOL: Record<ActionKind, string> = {
  new: "+",
  update: "~",
  replace: "-/+",
  unchanged: "=",
  remove: "-",
  failed: "!",
};

function action(kind: ActionKind, reason?: string): PlannedAction {
  const text = `${SYMBOL[kind]} ${kind}${reason ? ` (${reason})` : ""}`;
  return reason ? { kind, text, reason } : { kind, text };
}

const short = (commit: string) => commit.slice(0, 6);

function sameEnv(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** Resources of one service in the module: `docker_container.app["api"]`, `docker_container.envoy["api"]`. */
function touches(resources: { address: string }[], service: string): boolean {
  return resources.some((r) => r.address.endsWith(`["${service}"]`));
}

export function serviceAction(
  service: string,
  previous: StackService | undefined,
  next: StackService | undefined,
  resources: { address: string; actions: string[] }[] = [],
): PlannedAction {
  if (!next) return previous ? action("remove") : action("failed", "nothing deployed");
  if (!previous) return action("new");
  if (previous.commit !== next.commit)
    return action("update", `commit ${short(previous.commit)} → ${short(next.commit)}`);
  if (previous.image !== next.image) return action("replace", "image changed");
  if (previous.config_hash !== next.config_hash) return action("replace", "config changed");
  if (!sameEnv(previous.env, next.env)) return action("replace", "env changed");
  if (previous.host_port !== next.host_port) return action("replace", "port changed");
  if (touches(resources, service)) return action("replace", "drift: changed outside iac");
  return action("unchanged");
}

export interface PlanCounts {
  new: number;
  update: number;
  replace: number;
  unchanged: number;
  remove: number;
  failed: number;
}

export function countActions(actions: PlannedAction[]): PlanCounts {
  const counts: PlanCounts = { new: 0, update: 0, replace: 0, unchanged: 0, remove: 0, failed: 0 };
  for (const a of actions) counts[a.kind]++;
  return counts;
}

/** "Services: 1 new, 1 to update, 0 to replace, 2 unchanged, 0 to remove; 1 image would be built." */
export function summaryLine(counts: PlanCounts, wouldBuild: number): string {
  const parts = [
    `${counts.new} new`,
    `${counts.update} to update`,
    `${counts.replace} to replace`,
    `${counts.unchanged} unchanged`,
    `${counts.remove} to remove`,
  ];
  if (counts.failed) parts.push(`${counts.failed} failed`);
  const images =
    wouldBuild === 0
      ? "no image to build"
      : `${wouldBuild} image${wouldBuild === 1 ? "" : "s"} would be built`;
  return `Services: ${parts.join(", ")}; ${images}.`;
}
