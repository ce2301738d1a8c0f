// Progress events emitted by the pipeline; rendered by the CLI (TTY view, plain lines,
// NDJSON) and streamed by the admin API as Server-Sent Events.

export type Stage =
  | "images"
  | "queued"
  | "fetch"
  | "detect"
  | "build"
  | "certs"
  | "plan"
  | "apply"
  | "health"
  | "destroy"
  | "done"
  | "failed";

export type DeployEvent =
  | { type: "stage"; ts: string; service?: string; stage: Stage; message?: string }
  | {
      type: "log";
      ts: string;
      service?: string;
      source: "fetch" | "build" | "terraform" | "health" | "pipeline";
      line: string;
    }
  | { type: "result"; ts: string; result: unknown };

export type EventSink = (event: DeployEvent) => void;

export const noopSink: EventSink = () => {};

export function stageEvent(stage: Stage, service?: string, message?: string): DeployEvent {
  return { type: "stage", ts: new Date().toISOString(), stage, service, message };
}

export function logEvent(
  source: Extract<DeployEvent, { type: "log" }>["source"],
  line: string,
  service?: string,
): DeployEvent {
  return { type: "log", ts: new Date().toISOString(), source, line, service };
}
