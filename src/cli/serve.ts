// `iac serve`: the admin API on IAC_HTTP_ADDR (TCP, Supabase Auth) and IAC_SOCKET_PATH
// (Unix socket, trusted by its file mode). Logs go to stderr as JSON lines (pino); the first
// human-readable lines say where it listens and whether auth is configured.
import type { Command } from "commander";

import { migrateLegacyState, migrationMessage } from "../stack/state-dir.js";
import { progress } from "./shared.js";

interface ServeFlags {
  httpAddr?: string;
  socket?: string | boolean;
  grpcSocket?: string | boolean;
  project?: string;
}

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description(
      "Serve the admin API on IAC_HTTP_ADDR (default 127.0.0.1:8080; bearer auth via Supabase) and on the " +
        "Unix socket IAC_SOCKET_PATH (mode 0600, trusted by file permissions). Port 0 picks a free port.",
    )
    .option("--http-addr <host:port>", "TCP address (overrides IAC_HTTP_ADDR)")
    .option("--socket <path>", "Unix socket path (overrides IAC_SOCKET_PATH)")
    .option("--no-socket", "do not listen on a Unix socket")
    .option(
      "--grpc-socket <path>",
      "Unix socket for the gRPC ControlPlane service (default: <socket>.grpc.sock)",
    )
    .option("--no-grpc-socket", "do not serve gRPC")
    .option("-p, --project <name>", "default project (overrides IAC_PROJECT)")
    .action(async (flags: ServeFlags) => {
      const { pino } = await import("pino");
      const { loadSystemConfig } = await import("../kernel/config.js");
      const { operations } = await import("../api/pipeline.js");
      const { grpcSocketPathFor } = await import("../api/grpc.js");
      const { createServer } = await import("../api/server.js");
      const config = loadSystemConfig({
        IAC_HTTP_ADDR: flags.httpAddr,
        IAC_SOCKET_PATH: typeof flags.socket === "string" ? flags.socket : undefined,
        IAC_PROJECT: flags.project,
      });
      for (const m of migrateLegacyState(config)) progress(migrationMessage(m));
      const logger = pino(
        {
          level: config.logLevel,
          base: { svc: "iac-serve" },
          redact: {
            paths: ["req.headers.authorization", "req.headers.apikey"],
            censor: "[redacted]",
          },
        },
        pino.destination({ fd: 2, sync: false }),
      );
      const server = await createServer({ config, pipeline: operations, logger });
      if (!server.auth.configured) {
        progress(
          "iac serve: WARNING: auth is NOT configured (SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY unset): " +
            "every TCP request that needs auth gets 503; only the Unix socket can deploy",
        );
      }
      const socketPath = flags.socket === false ? false : config.socketPath;
      const grpcSocketPath =
        flags.grpcSocket === false || socketPath === false
          ? false
          : typeof flags.grpcSocket === "string"
            ? flags.grpcSocket
            : grpcSocketPathFor(socketPath);
      const bound = await server.listen({ socketPath, grpcSocketPath });
      progress(
        `iac serve: listening on ${[
          bound.httpUrl,
          bound.socketPath && `unix:${bound.socketPath}`,
          bound.grpcSocketPath && `gRPC unix:${bound.grpcSocketPath}`,
        ]
          .filter(Boolean)
          .join(", ")}` +
          ` (auth: ${server.auth.configured ? `Supabase ${config.supabase.url}` : "not configured"}` +
          `${config.socketRequireAuth ? ", socket requires a bearer" : ""})`,
      );
      logger.info(
        {
          http: bound.httpUrl,
          socket: bound.socketPath,
          auth: server.auth.configured,
        },
        "iac serve started",
      );
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          progress(`iac serve: ${signal}: shutting down`);
          server
            .close()
            .catch((err) => progress(`iac serve: error while closing: ${String(err)}`))
            .finally(() => {
              logger.flush();
              resolve();
            });
        };
        process.once("SIGTERM", () => stop("SIGTERM"));
        process.once("SIGINT", () => stop("SIGINT"));
      });
    });
}
