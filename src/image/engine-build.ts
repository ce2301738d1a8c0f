// One image build on the Docker Engine API (classic builder): streams the context, follows the
// progress, keeps the last lines and the step for errors. Used by the generated-Dockerfile build
// and by both builds of an own-Dockerfile image.
import type Docker from "dockerode";
import type { TarEntry } from "./context.js";
import { tarStream } from "./context.js";

interface BuildMessage {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

export interface EngineBuildResult {
  /** Image id (from the engine's aux message), when the build succeeded. */
  id?: string;
  /** The engine's error, when it failed. */
  failure?: string;
  /** The last `Step n/m : ...` line seen. */
  step?: string;
  /** The last 30 output lines. */
  last: string[];
}

export interface EngineBuildOptions {
  /** The Dockerfile's name in the context. */
  dockerfile: string;
  /** The tag; none for an intermediate image (known by its id). */
  tag?: string;
  buildargs?: Record<string, string>;
  labels?: Record<string, string>;
  noCache?: boolean;
  signal?: AbortSignal;
}

export async function engineBuild(
  docker: Docker,
  entries: TarEntry[],
  o: EngineBuildOptions,
  emit: (line: string) => void,
): Promise<EngineBuildResult> {
  const stream = await docker.buildImage(tarStream(entries), {
    ...(o.tag !== undefined && { t: o.tag }),
    dockerfile: o.dockerfile,
    ...(o.buildargs && { buildargs: o.buildargs }),
    ...(o.labels && { labels: o.labels }),
    // No intermediate container is left behind, also when a step fails.
    rm: true,
    forcerm: true,
    nocache: o.noCache ?? false,
    abortSignal: o.signal,
  } as Docker.ImageBuildOptions);
  const result: EngineBuildResult = { last: [] };
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve()),
      (msg: BuildMessage) => {
        if (msg.error) result.failure = msg.errorDetail?.message ?? msg.error;
        if (msg.aux?.ID) result.id = msg.aux.ID;
        const text = msg.stream ?? msg.status ?? msg.error;
        if (!text) return;
        for (const line of text.split(/\r?\n/)) {
          if (!line.trim()) continue;
          if (/^Step \d+\/\d+ : /.test(line)) result.step = line;
          result.last.push(line);
          if (result.last.length > 30) result.last.shift();
          emit(line);
        }
      },
    );
  }).catch((err: Error) => {
    result.failure ??= err.message;
  });
  return result;
}
