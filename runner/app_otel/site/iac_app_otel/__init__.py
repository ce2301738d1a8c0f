"""Console exporters for main()'s OpenTelemetry: one JSON line per span and per metrics export.

The SDK's own console exporters print indented JSON over many lines; these print one line each,
so every record is one line in the container log and in `iac logs`. Registered as the exporter
name `iac_console` (entry points in iac_app_otel-1.0.dist-info), selected by the runner with
OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER when no OTLP endpoint is set.
"""

from __future__ import annotations

import sys

from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter


class OneLineSpanExporter(ConsoleSpanExporter):
    def __init__(self) -> None:
        super().__init__(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")


class OneLineMetricExporter(ConsoleMetricExporter):
    def __init__(self) -> None:
        super().__init__(out=sys.stdout, formatter=lambda data: data.to_json(indent=None) + "\n")
