"""OpenTelemetry for the child's lifecycle: one span per run of main(), start/exit metrics.

Console (stdout, one JSON line per span) by default; OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
is set (protocol from OTEL_EXPORTER_OTLP_PROTOCOL: grpc, or http/protobuf — the default,
except that an endpoint on port 4317 means grpc). OTEL_SDK_DISABLED=true or
OTEL_TRACES_EXPORTER=none turn it off. Failures to set up never stop main() from running.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import __version__
from .config import RunnerConfig
from .supervisor import Telemetry


def _otlp_protocol(env: Mapping[str, str], endpoint: str) -> str:
    proto = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip()
    if proto:
        return proto
    return "grpc" if endpoint.rstrip("/").endswith(":4317") else "http/protobuf"


class _Sdk:
    """What the SDK gives once set up: a tracer, optional metric instruments, and its shutdown."""

    def __init__(self, trace: Any, tracer: Any, meter: Any | None, shutdown: Callable[[], None]) -> None:
        self.trace = trace
        self.tracer = tracer
        self.shutdown = shutdown
        self.starts = self.exits = self.duration = None
        if meter is not None:
            self.starts = meter.create_counter("iac.runner.main.starts", description="runs of main() started")
            self.exits = meter.create_counter("iac.runner.main.exits", description="runs of main() ended")
            self.duration = meter.create_histogram(
                "iac.runner.main.duration", unit="s", description="how long each run of main() lasted"
            )


class OtelTelemetry(Telemetry):
    """One span per run of main() and, with OTLP, start/exit metrics.

    The span's start is recorded when main() starts and the span is made when the run ends
    (with that start time), so the SDK is needed only then: `make` sets it up at once for OTLP
    (its metric reader runs from the start) but, for console export, only when the first run
    ends or the runner stops. A runner whose main() is running never imports the SDK for
    console export (issue 14: idle memory).
    """

    def __init__(
        self, make: Callable[[], _Sdk], attrs: dict[str, str], log: Callable[[str], None], eager: bool
    ) -> None:
        self._make = make
        self._attrs = attrs
        self._log = log
        self._lock = threading.Lock()
        self._sdk: _Sdk | None = None
        self._failed = False
        self._run: dict[str, Any] | None = None
        if eager:
            self._ensure()

    def _ensure(self) -> _Sdk | None:
        with self._lock:
            if self._sdk is None and not self._failed:
                try:
                    self._sdk = self._make()
                except Exception as err:  # noqa: BLE001 - telemetry is optional
                    self._failed = True
                    self._log(f"OpenTelemetry disabled: {type(err).__name__}: {err}")
            return self._sdk

    def child_started(self, argv: Sequence[str], pid: int, restarts: int) -> None:
        run = {
            "start_ns": time.time_ns(),
            "attributes": {
                **self._attrs,
                "process.pid": pid,
                "process.command_args": list(argv),
                "iac.restarts": restarts,
            },
        }
        with self._lock:
            self._run = run
            sdk = self._sdk
        if sdk is not None and sdk.starts is not None:
            sdk.starts.add(1, self._attrs)

    def _take_run(self) -> dict[str, Any] | None:
        with self._lock:
            run, self._run = self._run, None
        return run

    def child_exited(self, code: int, duration_s: float, restarts: int) -> None:
        run = self._take_run()
        sdk = self._ensure()
        if sdk is None:
            return
        attrs = {**self._attrs, "process.exit.code": code}
        if sdk.exits is not None and sdk.duration is not None:
            sdk.exits.add(1, attrs)
            sdk.duration.record(duration_s, attrs)
        if run is not None:
            span = sdk.tracer.start_span("main()", attributes=run["attributes"], start_time=run["start_ns"])
            span.set_attribute("process.exit.code", code)
            if code != 0:
                span.set_status(sdk.trace.Status(sdk.trace.StatusCode.ERROR, f"exit code {code}"))
            span.end()

    def shutdown(self) -> None:
        run = self._take_run()
        sdk = self._ensure() if run is not None else self._sdk
        if sdk is None:
            return
        if run is not None:
            sdk.tracer.start_span("main()", attributes=run["attributes"], start_time=run["start_ns"]).end()
        try:
            sdk.shutdown()
        except Exception:  # noqa: BLE001 - never fail the stop path on exporter trouble
            pass


def setup(cfg: RunnerConfig, env: Mapping[str, str], log: Callable[[str], None]) -> Telemetry:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Telemetry()
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return Telemetry()
    try:
        if importlib.util.find_spec("opentelemetry.sdk") is None:
            raise ModuleNotFoundError("No module named 'opentelemetry.sdk'")
    except (ImportError, ValueError) as err:
        log(f"OpenTelemetry disabled: {type(err).__name__}: {err}")
        return Telemetry()
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    protocol = _otlp_protocol(env, endpoint) if endpoint else ""
    resource_attrs = {
        "service.name": env.get("OTEL_SERVICE_NAME", "").strip() or cfg.service,
        "service.namespace": cfg.project or "iac",
        "service.version": cfg.commit or "unknown",
        "telemetry.auto.version": __version__,
    }

    def make() -> _Sdk:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        resource = Resource.create(resource_attrs)
        tracer_provider = TracerProvider(resource=resource)
        meter_provider: Any = None
        if endpoint:
            from opentelemetry import metrics
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            if protocol == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            else:
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            meter_provider = MeterProvider(
                resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]
            )
            metrics.set_meter_provider(meter_provider)
        else:
            # Console: one span per run of main(), written when it ends; no metrics (nothing
            # would read them) and no export thread.
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

            tracer_provider.add_span_processor(
                SimpleSpanProcessor(
                    ConsoleSpanExporter(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")
                )
            )
        trace.set_tracer_provider(tracer_provider)

        def shutdown() -> None:
            tracer_provider.shutdown()
            if meter_provider is not None:
                meter_provider.shutdown()

        meter = meter_provider.get_meter("iac_runner", __version__) if meter_provider is not None else None
        return _Sdk(trace, tracer_provider.get_tracer("iac_runner", __version__), meter, shutdown)

    where = f"OTLP {protocol} {endpoint}" if endpoint else "console (stdout)"
    log(f"OpenTelemetry: traces{' and metrics' if endpoint else ''} to {where}")
    return OtelTelemetry(make, {"iac.service": cfg.service}, log, eager=bool(endpoint))
