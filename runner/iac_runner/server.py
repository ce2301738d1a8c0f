"""The runner's gRPC server: iac.controlplane.v1.Runtime and grpc.health.v1.Health."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
from google.protobuf import empty_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .config import RunnerConfig
from .gen import controlplane_pb2 as pb
from .gen import controlplane_pb2_grpc as pb_grpc
from .logbuf import Line, LogBuffer
from .supervisor import State, Supervisor

RUNTIME_SERVICE = "iac.controlplane.v1.Runtime"
# The one call the service's own identity may make: its HEALTHCHECK probe (`iac_runner probe`).
PROBE_METHOD = "/grpc.health.v1.Health/Check"
MAX_FOLLOWERS = 8
_FOLLOW_POLL_S = 0.5


class TlsFilesError(RuntimeError):
    pass


def read_tls_files(cfg: RunnerConfig) -> tuple[bytes, bytes, bytes]:
    """(ca, cert, key) PEM bytes from IAC_TLS_DIR, or a TlsFilesError naming what is missing."""
    out = []
    for path in (cfg.ca_file, cfg.cert_file, cfg.key_file):
        try:
            with open(path, "rb") as f:
                out.append(f.read())
        except OSError as err:
            raise TlsFilesError(
                f"cannot read {path}: {err.strerror or err} "
                f"(IAC_SIDECAR=none needs ca.pem, cert.pem and key.pem in IAC_TLS_DIR={cfg.tls_dir}, "
                "readable by the container user)"
            ) from err
    return out[0], out[1], out[2]


def caller_allowed(caller_ids: list[str], allowed: tuple[str, ...]) -> bool:
    """True when one of the caller's URI SANs is allowed (exact id, or a prefix ending in /*)."""
    for caller in caller_ids:
        for rule in allowed:
            if caller == rule or (rule.endswith("/*") and caller.startswith(rule[:-1])):
                return True
    return False


class CallerAllowList(grpc.ServerInterceptor):
    """With IAC_SIDECAR=none: the runtime API (Runtime/*, Health/*) is for the control plane
    only — the same rule as the Envoy sidecar's RBAC filter. Any call, known method or not,
    from a verified certificate without an allowed SPIFFE id gets PERMISSION_DENIED (the CA
    alone is not enough: it is shared by every project, and peers must not read logs). The
    one exception is the service's own identity calling Health/Check: its HEALTHCHECK probe."""

    def __init__(self, allowed: tuple[str, ...], self_id: str = "") -> None:
        self.allowed = allowed
        self.self_id = self_id

    def permits(self, method: str, ids: list[str]) -> bool:
        if caller_allowed(ids, self.allowed):
            return True
        return bool(self.self_id) and self.self_id in ids and method == PROBE_METHOD

    def _check(self, method: str, context: grpc.ServicerContext) -> None:
        ids = [v.decode() for v in context.auth_context().get("peer_uri", [])]
        if not self.permits(method, ids):
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"caller {', '.join(ids) or '(no URI SAN)'} may not call {method}: "
                f"the runtime API is for {', '.join(self.allowed)} only",
            )

    def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        method = handler_call_details.method
        handler = continuation(handler_call_details)
        check = self._check
        if handler is None:
            # An unknown method: refused like a known one for a caller without the right
            # identity (nothing else gets in), UNIMPLEMENTED for the control plane.
            def unknown(request, context):  # type: ignore[no-untyped-def]
                check(method, context)
                context.abort(grpc.StatusCode.UNIMPLEMENTED, f"unknown method {method}")

            return grpc.unary_unary_rpc_method_handler(unknown)

        def guard(behavior):  # type: ignore[no-untyped-def]
            def guarded(request, context):  # type: ignore[no-untyped-def]
                check(method, context)
                return behavior(request, context)

            return guarded

        kinds = (
            ("unary_unary", grpc.unary_unary_rpc_method_handler),
            ("unary_stream", grpc.unary_stream_rpc_method_handler),
            ("stream_unary", grpc.stream_unary_rpc_method_handler),
            ("stream_stream", grpc.stream_stream_rpc_method_handler),
        )
        for attr, make in kinds:
            behavior = getattr(handler, attr)
            if behavior is not None:
                return make(
                    guard(behavior),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return handler


def to_pb_line(line: Line) -> pb.LogLine:
    ts = Timestamp()
    ts.FromNanoseconds(int(line.ts * 1e9))
    return pb.LogLine(ts=ts, msg=line.msg, stream=line.stream)


def skipped_line(count: int, kept: int) -> pb.LogLine:
    """The marker a follower gets in place of lines evicted before it read them."""
    ts = Timestamp()
    ts.GetCurrentTime()
    return pb.LogLine(
        ts=ts,
        msg=f"[iac-runner] {count} lines skipped: the reader fell behind (the buffer keeps the last {kept})",
        stream="runner",
    )


def to_pb_status(cfg: RunnerConfig, argv: list[str], state: State) -> pb.HealthStatus:
    msg = pb.HealthStatus(
        status=pb.HealthStatus.SERVING if state.serving else pb.HealthStatus.NOT_SERVING,
        service=cfg.service,
        phase=state.phase,
        restarts=state.restarts,
        uptime_seconds=state.uptime(),
        message=state.message,
        commit=cfg.commit,
        argv=argv,
        pid=state.pid,
    )
    if state.exit_code is not None:
        msg.exit_code = state.exit_code
    return msg


class RuntimeServicer(pb_grpc.RuntimeServicer):
    def __init__(self, cfg: RunnerConfig, sup: Supervisor, buf: LogBuffer) -> None:
        self.cfg = cfg
        self.sup = sup
        self.buf = buf
        self.closing = threading.Event()
        self._followers = threading.BoundedSemaphore(MAX_FOLLOWERS)

    def HealthCheck(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> pb.HealthStatus:
        return to_pb_status(self.cfg, self.sup.argv, self.sup.state)

    def StreamLogs(self, request: pb.LogRequest, context: grpc.ServicerContext) -> Iterator[pb.LogLine]:
        if request.follow and not self._followers.acquire(blocking=False):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"at most {MAX_FOLLOWERS} concurrent log followers; try again later",
            )
        try:
            lines, seq = self.buf.snapshot(request.tail)
            for line in lines:
                yield to_pb_line(line)
            if not request.follow:
                return
            while context.is_active() and not self.closing.is_set() and not self.buf.closed:
                for line in self.buf.after(seq, timeout=_FOLLOW_POLL_S):
                    # The reader fell behind the ring buffer (a slow consumer holds the stream
                    # back): the evicted lines are gone, and the reader is told how many.
                    if line.seq > seq + 1:
                        yield skipped_line(line.seq - seq - 1, self.buf.max_lines)
                    seq = line.seq
                    yield to_pb_line(line)
        finally:
            if request.follow:
                self._followers.release()


class RuntimeServer:
    """Owns the grpc.Server; keeps grpc.health.v1 in step with the supervisor's state."""

    def __init__(self, cfg: RunnerConfig, sup: Supervisor, buf: LogBuffer) -> None:
        self.cfg = cfg
        self.runtime = RuntimeServicer(cfg, sup, buf)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=MAX_FOLLOWERS + 8, thread_name_prefix="grpc"),
            maximum_concurrent_rpcs=MAX_FOLLOWERS + 16,
            options=[("grpc.so_reuseport", 0)],
            interceptors=[CallerAllowList(cfg.allowed_callers, cfg.self_id)] if cfg.tls else [],
        )
        pb_grpc.add_RuntimeServicer_to_server(self.runtime, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = 0
        self.update(sup.state)

    def update(self, state: State) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if state.serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", RUNTIME_SERVICE, self.cfg.service):
            self.health.set(name, status)

    def start(self) -> int:
        address = f"{self.cfg.listen_host}:{self.cfg.listen_port}"
        if self.cfg.tls:
            ca, cert, key = read_tls_files(self.cfg)
            creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)
            self.port = self.server.add_secure_port(address, creds)
        else:
            self.port = self.server.add_insecure_port(address)
        if not self.port:
            raise RuntimeError(f"cannot listen on {address}")
        self.server.start()
        return self.port

    def stop(self, grace_s: float = 1.0) -> None:
        self.health.enter_graceful_shutdown()
        self.runtime.closing.set()
        self.runtime.buf.close()
        self.server.stop(grace_s).wait(grace_s + 1.0)
