"""main() under opentelemetry-instrument: the runner's decision (apptelemetry.plan) from the
image's verdict file and the environment, and the supervisor running the prefix in front of argv
while reporting argv itself."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from iac_runner.apptelemetry import plan

from .conftest import PY


def _verdict(tmp_path: Path, enabled: bool, reason: str = "r") -> str:
    f = tmp_path / "iac-telemetry.json"
    f.write_text(json.dumps({"enabled": enabled, "reason": reason}))
    return str(f)


def _instrument(tmp_path: Path) -> str:
    exe = tmp_path / "opentelemetry-instrument"
    exe.write_text('#!/bin/sh\nexec "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


def test_no_verdict_file_means_not_installed(tmp_path):
    p = plan({}, verdict_file=str(tmp_path / "absent.json"), instrument=_instrument(tmp_path))
    assert (p.enabled, p.reason, p.prefix, p.env) == (False, "not installed in this image", [], {})


def test_the_builds_reason_is_passed_on(tmp_path):
    p = plan({}, verdict_file=_verdict(tmp_path, False, "OpenTelemetry does not resolve: x"), instrument="/x")
    assert not p.enabled and p.reason == "OpenTelemetry does not resolve: x"


def test_console_one_json_line_exporters_without_an_endpoint(tmp_path):
    inst = _instrument(tmp_path)
    p = plan({}, verdict_file=_verdict(tmp_path, True), instrument=inst)
    assert p.enabled and p.prefix == [inst]
    assert p.env == {
        "OTEL_TRACES_EXPORTER": "iac_console",
        "OTEL_METRICS_EXPORTER": "iac_console",
        "OTEL_LOGS_EXPORTER": "none",
    }
    assert "stdout" in p.reason


def test_otlp_http_with_an_endpoint_and_the_environment_wins(tmp_path):
    inst = _instrument(tmp_path)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_METRICS_EXPORTER": "none"}
    p = plan(env, verdict_file=_verdict(tmp_path, True), instrument=inst)
    assert p.enabled
    assert p.env == {
        "OTEL_TRACES_EXPORTER": "otlp_proto_http",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_LOGS_EXPORTER": "none",
    }
    assert "http://collector:4318" in p.reason


def test_grpc_endpoint_and_sdk_disabled_turn_it_off_with_the_reason(tmp_path):
    inst = _instrument(tmp_path)
    v = _verdict(tmp_path, True)
    grpc = plan({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, verdict_file=v, instrument=inst)
    assert not grpc.enabled and "OTLP/gRPC" in grpc.reason
    off = plan({"OTEL_SDK_DISABLED": "true"}, verdict_file=v, instrument=inst)
    assert not off.enabled and off.reason == "OTEL_SDK_DISABLED=true"
    missing = plan({}, verdict_file=v, instrument=str(tmp_path / "nope"))
    assert not missing.enabled and "missing" in missing.reason


def test_supervisor_runs_the_prefix_and_reports_argv(harness, tmp_path):
    marker = tmp_path / "prefixed"
    wrapper = tmp_path / "wrap.sh"
    wrapper.write_text(f'#!/bin/sh\necho wrapped > {marker}\nexec "$@"\n')
    wrapper.chmod(0o755)
    sup = harness.supervisor("print('child ran')")
    sup.launch_prefix = [str(wrapper)]
    sup.start()
    assert sup.wait(10)
    assert marker.read_text() == "wrapped\n"
    assert "child ran" in sup._out.text()
    assert sup.argv[0] == PY
