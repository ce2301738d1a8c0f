"""OpenTelemetry: a span per run of main(), console export by default, off when disabled."""

import json
import signal
import subprocess
import threading

from iac_runner import telemetry
from iac_runner.config import RunnerConfig
from iac_runner.supervisor import Telemetry

from .conftest import PY, RUNNER_DIR, runner_env


def test_console_export_writes_one_json_span_per_run_with_service_name():
    env = runner_env(IAC_LISTEN="127.0.0.1:0", IAC_SERVICE="otel-svc", IAC_RESTART_POLICY="never")
    env.pop("OTEL_TRACES_EXPORTER")
    proc = subprocess.Popen(
        [PY, "-m", "iac_runner", "--", PY, "-c", "raise SystemExit(4)"],
        cwd=RUNNER_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Stop it once main() has exited (a fixed sleep raced a slow start on a loaded machine).
    err_lines: list[str] = []
    exited = threading.Event()

    def read_stderr() -> None:
        for line in proc.stderr:
            err_lines.append(line)
            if "main() exited with code 4" in line:
                exited.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    assert exited.wait(timeout=60), "".join(err_lines)
    proc.send_signal(signal.SIGTERM)
    out = proc.stdout.read()
    proc.wait(timeout=20)
    reader.join(timeout=5)
    err = "".join(err_lines)
    assert "OpenTelemetry: traces to console (stdout)" in err
    spans = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(spans) == 1, out
    span = spans[0]
    assert span["name"] == "main()"
    assert span["resource"]["attributes"]["service.name"] == "otel-svc"
    assert span["attributes"]["process.exit.code"] == 4
    assert span["status"]["status_code"] == "ERROR"


def test_disabled_sdk_gives_the_noop_hooks():
    logs: list[str] = []
    tel = telemetry.setup(RunnerConfig(), {"OTEL_SDK_DISABLED": "true"}, logs.append)
    assert type(tel) is Telemetry and logs == []
    tel = telemetry.setup(RunnerConfig(), {"OTEL_TRACES_EXPORTER": "none"}, logs.append)
    assert type(tel) is Telemetry


def test_otlp_protocol_choice():
    assert telemetry._otlp_protocol({}, "http://collector:4317") == "grpc"
    assert telemetry._otlp_protocol({}, "http://collector:4318") == "http/protobuf"
    assert telemetry._otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "http://c:4318") == "grpc"
