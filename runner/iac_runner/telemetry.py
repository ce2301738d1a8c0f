"""OpenTelemetry for the child's lifecycle: one span per run of main(), start/exit metrics.

Console (stdout, one JSON line per span) by default; OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
is set (protocol from OTEL_EXPORTER_OTLP_PROTOCOL: grpc, or http/protobuf — the default,
except that an endpoint on port 4317 means grpc). OTEL_SDK_DISABLED=true or
OTEL_TRACES_EXPORTER=none turn it off. Failures to set up never stop main() from running.
"""

from __future__ import annotations

import sys
import threading
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


class OtelTelemetry(Telemetry):
    def __init__(self, tracer: Any, meter: Any, shutdown: Callable[[], None], attrs: dict[str, str]) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = tracer
        self._shutdown = shutdown
        self._attrs = attrs
        self._lock = threading.Lock()
        self._span: Any = None
        self._starts = meter.create_counter("iac.runner.main.starts", description="runs of main() started")
        self._exits = meter.create_counter("iac.runner.main.exits", description="runs of main() ended")
        self._duration = meter.create_histogram(
            "iac.runner.main.duration", unit="s", description="how long each run of main() lasted"
        )

    def child_started(self, argv: Sequence[str], pid: int, restarts: int) -> None:
        span = self._tracer.start_span(
            "main()",
            attributes={
                **self._attrs,
                "process.pid": pid,
                "process.command_args": list(argv),
                "iac.restarts": restarts,
            },
        )
        with self._lock:
            self._span = span
        self._starts.add(1, self._attrs)

    def child_exited(self, code: int, duration_s: float, restarts: int) -> None:
        with self._lock:
            span, self._span = self._span, None
        attrs = {**self._attrs, "process.exit.code": code}
        self._exits.add(1, attrs)
        self._duration.record(duration_s, attrs)
        if span is not None:
            span.set_attribute("process.exit.code", code)
            if code != 0:
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"exit code {code}"))
            span.end()

    def shutdown(self) -> None:
        with self._lock:
            span, self._span = self._span, None
        if span is not None:
            span.end()
        try:
            self._shutdown()
        except Exception:  # noqa: BLE001 - never fail the stop path on exporter trouble
            pass


def setup(cfg: RunnerConfig, env: Mapping[str, str], log: Callable[[str], None]) -> Telemetry:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Telemetry()
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return Telemetry()
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        resource = Resource.create(
            {
                "service.name": env.get("OTEL_SERVICE_NAME", "").strip() or cfg.service,
                "service.namespace": cfg.project or "iac",
                "service.version": cfg.commit or "unknown",
                "telemetry.auto.version": __version__,
            }
        )
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        readers = []
        if endpoint:
            protocol = _otlp_protocol(env, endpoint)
            if protocol == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            else:
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            span_exporter: Any = OTLPSpanExporter()
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
            where = f"OTLP {protocol} {endpoint}"
        else:
            span_exporter = ConsoleSpanExporter(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")
            where = "console (stdout)"
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)

        def shutdown() -> None:
            tracer_provider.shutdown()
            meter_provider.shutdown()

        log(f"OpenTelemetry: traces{' and metrics' if readers else ''} to {where}")
        attrs = {"iac.service": cfg.service}
        return OtelTelemetry(
            trace.get_tracer("iac_runner", __version__),
            metrics.get_meter("iac_runner", __version__),
            shutdown,
            attrs,
        )
    except Exception as err:  # noqa: BLE001 - telemetry is optional
        log(f"OpenTelemetry disabled: {type(err).__name__}: {err}")
        return Telemetry()
