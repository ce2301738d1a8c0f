"""iac-runner — PID 1 of every iac-wrapper app container.

Usage:
    python -m iac_runner -- ARGV...    run ARGV (main()) under supervision, serve gRPC
    python -m iac_runner probe         exit 0 when the local runner reports SERVING (HEALTHCHECK)
    python -m iac_runner version

Environment contract (set by the Terraform module / `docker run -e`; all optional):
    IAC_SERVICE             service name: health/log responses, OTel service.name, the TLS
                            server name the probe expects (default "app")
    IAC_PROJECT             project name (OTel service.namespace)
    IAC_COMMIT              commit the image was built from (reported by HealthCheck)
    IAC_SIDECAR             envoy (default): plaintext h2 gRPC on 127.0.0.1:50051, Envoy fronts it;
                            none: gRPC with mutual TLS on 0.0.0.0:15000 (client cert required,
                            verified against IAC_TLS_DIR/ca.pem)
    IAC_LISTEN              host:port override of the address above
    IAC_TLS_DIR             directory with ca.pem, cert.pem, key.pem (default /etc/iac/certs)
    IAC_RESTART_POLICY      never | on-failure (default) | always
    IAC_MAX_RESTARTS        restarts before giving up (default 10)
    IAC_BACKOFF_INITIAL_S   first restart delay, doubled per restart (default 1)
    IAC_BACKOFF_MAX_S       restart delay cap (default 30); a run of >= 60 s resets the backoff
    IAC_STOP_GRACE_S        seconds between forwarding SIGTERM and SIGKILL (default 8; keep it below
                            the container stop timeout, Docker's default is 10)
    IAC_HEALTH_STABLE_S     SERVING only after main() has run this long without a restart (default 3;
                            an exit 0 is SERVING at once); a restart inside it is NOT_SERVING with
                            the failed run's exit code
    IAC_LOG_BUFFER_LINES    lines kept for StreamLogs (default 1000)
    IAC_ENVOY_CONFIG        Swarm target (Envoy in the task): the runner also starts
                            `IAC_ENVOY_BIN -c IAC_ENVOY_CONFIG` (default /usr/local/bin/envoy) and
                            restarts it whenever it exits; the probe then also needs Envoy's
                            inbound listener (127.0.0.1:IAC_ENVOY_PORT, default 15000) to accept
                            connections
    OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_SERVICE_NAME, OTEL_SDK_DISABLED,
    OTEL_TRACES_EXPORTER=none   OpenTelemetry (console export when no endpoint is set)

The child gets the same environment (plus PYTHONUNBUFFERED=1 and OTEL_SERVICE_NAME), runs
in its own process group, cwd = the runner's cwd (/app in images). SIGTERM/SIGINT are
forwarded to the group, SIGKILL follows after IAC_STOP_GRACE_S; SIGHUP/SIGUSR1/SIGUSR2 are
forwarded as they are. The runner keeps serving health and logs after main() exits until it
is stopped, then exits with main()'s last exit code (128+N when main() died from signal N).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from . import __version__
from .config import ConfigError, RunnerConfig, load

if TYPE_CHECKING:
    from .supervisor import Supervisor

USAGE = "usage: python -m iac_runner -- ARGV... | probe | version"


def _stderr(msg: str) -> None:
    sys.stderr.write(f"[iac-runner] {msg}\n")
    sys.stderr.flush()


def _instrument_app(sup: Supervisor) -> None:
    """main() under opentelemetry-instrument when the image installed it (apptelemetry.py)."""
    from .apptelemetry import plan

    p = plan(sup.env)
    if p.enabled:
        sup.launch_prefix = p.prefix
        sup.env.update(p.env)
    sup.event(f"OpenTelemetry auto-instrumentation of main(): {'on, ' if p.enabled else 'off: '}{p.reason}")


def run(argv: list[str], cfg: RunnerConfig) -> int:
    from . import telemetry
    from .logbuf import LogBuffer
    from .server import RuntimeServer, TlsFilesError
    from .supervisor import Supervisor

    buf = LogBuffer(cfg.log_buffer_lines)
    sup = Supervisor(argv, cfg, buf)
    sup.event(f"iac-runner {__version__} pid={os.getpid()} service={cfg.service} sidecar={cfg.sidecar}")
    sup.telemetry = telemetry.setup(cfg, os.environ, sup.event)
    _instrument_app(sup)
    server = RuntimeServer(cfg, sup, buf)
    try:
        port = server.start()
    except (TlsFilesError, RuntimeError) as err:
        _stderr(f"error: {err}")
        return 2
    mode = "mTLS (client cert required)" if cfg.tls else "plaintext (behind the sidecar)"
    sup.event(f"gRPC listening on {cfg.listen_host}:{port} {mode}")
    sup.on_change = server.update

    stop_signal: list[int] = []
    stop_requested = threading.Event()

    def on_stop(signum: int, _frame: object) -> None:
        if not stop_signal:
            stop_signal.append(signum)
        stop_requested.set()

    def on_forward(signum: int, _frame: object) -> None:
        sup.forward(signum)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, on_forward)

    envoy = _envoy_supervisor(cfg, sup) if cfg.envoy_config else None
    if envoy is not None:
        envoy.start()
    sup.start()
    while not stop_requested.wait(1.0):
        pass
    sig = stop_signal[0] if stop_signal else signal.SIGTERM
    sup.event(f"received {signal.Signals(sig).name}")
    code = sup.stop(sig)
    if envoy is not None:  # the way in closes last, after main() has stopped
        envoy.stop(signal.SIGTERM)
    server.stop(1.0)
    sup.telemetry.shutdown()
    sup.event(f"exiting with status {code}")
    return code


def envoy_argv(cfg: RunnerConfig) -> list[str]:
    return [
        cfg.envoy_bin,
        "-c",
        cfg.envoy_config,
        "--service-cluster",
        cfg.project or cfg.service,
        "--service-node",
        cfg.service,
        "--log-level",
        "info",
    ]


def _envoy_supervisor(cfg: RunnerConfig, sup: Supervisor) -> Supervisor:
    from dataclasses import replace

    from .supervisor import Supervisor

    # Envoy is restarted whatever its exit code; the probe fails while it is down.
    envoy_cfg = replace(cfg, restart_policy="always")
    return Supervisor(envoy_argv(cfg), envoy_cfg, sup.buf, waiter=sup.waiter, name="envoy")


def probe_envoy(cfg: RunnerConfig, timeout_s: float = 3.0) -> int:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", cfg.envoy_port), timeout=timeout_s):
            return 0
    except OSError as err:
        print(f"probe: envoy 127.0.0.1:{cfg.envoy_port}: {err}", file=sys.stderr)
        return 1


def probe(cfg: RunnerConfig, timeout_s: float = 3.0) -> int:
    if cfg.envoy_config and probe_envoy(cfg, timeout_s) != 0:
        return 1
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    host = "127.0.0.1" if cfg.listen_host in ("0.0.0.0", "", "::", "[::]") else cfg.listen_host
    target = f"{host}:{cfg.listen_port}"
    if cfg.tls:
        from .server import TlsFilesError, read_tls_files

        try:
            ca, cert, key = read_tls_files(cfg)
        except TlsFilesError as err:
            print(f"probe: {err}", file=sys.stderr)
            return 1
        creds = grpc.ssl_channel_credentials(ca, key, cert)
        channel = grpc.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", cfg.service)])
    else:
        channel = grpc.insecure_channel(target)
    try:
        with channel:
            resp = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
    except grpc.RpcError as err:
        print(f"probe: {target}: {err.code().name}: {err.details()}", file=sys.stderr)
        return 1
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    print(f"probe: {target}: {name}")
    return 0 if resp.status == health_pb2.HealthCheckResponse.SERVING else 1


def main(args: list[str] | None = None) -> int:
    args = sys.argv[1:] if args is None else args
    if args and args[0] == "version":
        print(__version__)
        return 0
    try:
        cfg = load()
    except ConfigError as err:
        _stderr(f"error: {err}")
        return 2
    if args and args[0] == "probe":
        return probe(cfg)
    if args and args[0] == "--":
        args = args[1:]
    if not args or args[0].startswith("-"):
        _stderr(USAGE)
        return 2
    return run(args, cfg)


if __name__ == "__main__":
    sys.exit(main())
