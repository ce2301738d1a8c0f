"""main() under OpenTelemetry auto-instrumentation, when the image has it (telemetry: auto).

The image build writes /opt/iac-telemetry.json: whether opentelemetry-distro went into the
app's venv (it resolved against the app's pins and `pip check` passed) or why not. When it did,
main() runs as `opentelemetry-instrument ARGV...` with its exporters chosen here: without
OTEL_EXPORTER_OTLP_ENDPOINT traces and metrics go to stdout as one JSON line each (`iac_console`),
with it to the collector over OTLP/HTTP. Nothing here imports OpenTelemetry: the runner's own
memory does not grow (the SDK lives in main()'s process).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

VERDICT_FILE = "/opt/iac-telemetry.json"
INSTRUMENT = "/opt/app-venv/bin/opentelemetry-instrument"


@dataclass
class Plan:
    enabled: bool
    reason: str
    prefix: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def _protocol(env: Mapping[str, str], endpoint: str) -> str:
    proto = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip()
    if proto:
        return proto
    return "grpc" if endpoint.rstrip("/").endswith(":4317") else "http/protobuf"


def plan(env: Mapping[str, str], verdict_file: str = VERDICT_FILE, instrument: str = INSTRUMENT) -> Plan:
    try:
        with open(verdict_file, encoding="utf-8") as f:
            verdict = json.load(f)
    except FileNotFoundError:
        return Plan(False, "not installed in this image")
    except (OSError, ValueError) as err:
        return Plan(False, f"cannot read {verdict_file}: {err}")
    if not verdict.get("enabled"):
        return Plan(False, str(verdict.get("reason") or "left out by the image build"))
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Plan(False, "OTEL_SDK_DISABLED=true")
    if not os.access(instrument, os.X_OK):
        return Plan(False, f"{instrument} is missing")
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if endpoint:
        if _protocol(env, endpoint) != "http/protobuf":
            return Plan(
                False,
                f"the endpoint {endpoint} speaks OTLP/gRPC; the app's venv has the OTLP/HTTP exporter only "
                "(set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf and an HTTP endpoint, port 4318)",
            )
        exporters = {
            "OTEL_TRACES_EXPORTER": "otlp_proto_http",
            "OTEL_METRICS_EXPORTER": "otlp_proto_http",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        }
        where = f"OTLP/HTTP {endpoint}"
    else:
        exporters = {"OTEL_TRACES_EXPORTER": "iac_console", "OTEL_METRICS_EXPORTER": "iac_console"}
        where = "stdout (one JSON line each)"
    exporters["OTEL_LOGS_EXPORTER"] = "none"
    # What the environment sets already wins (OTEL_TRACES_EXPORTER=none turns traces off).
    add = {k: v for k, v in exporters.items() if not env.get(k, "").strip()}
    return Plan(True, f"traces and metrics to {where}", prefix=[instrument], env=add)
