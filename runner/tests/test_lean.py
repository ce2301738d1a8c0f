"""Idle memory (issue 14): what the runner does not load while main() runs."""

import subprocess

from iac_runner import telemetry
from iac_runner.config import RunnerConfig

from .conftest import PY, RUNNER_DIR


def run_py(code: str) -> str:
    out = subprocess.run([PY, "-c", code], cwd=RUNNER_DIR, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_grpc_loads_without_pythons_ssl_and_ssl_stays_importable():
    out = run_py(
        "import sys\n"
        "from iac_runner.__main__ import import_grpc_lean\n"
        "import_grpc_lean()\n"
        "import grpc, asyncio\n"
        "from iac_runner.server import RuntimeServer\n"
        "print('ssl loaded:', 'ssl' in sys.modules, '_ssl' in sys.modules)\n"
        "server = grpc.server(__import__('concurrent.futures').futures.ThreadPoolExecutor(1))\n"
        "print('port:', server.add_insecure_port('127.0.0.1:0') > 0)\n"
        "import ssl\n"
        "print('ssl later:', ssl.OPENSSL_VERSION.split()[0])\n"
    )
    assert "ssl loaded: False False" in out
    assert "port: True" in out
    assert "ssl later: OpenSSL" in out


def test_console_telemetry_imports_the_sdk_only_when_a_run_ends():
    code = (
        "import sys, os\n"
        "from iac_runner import telemetry\n"
        "from iac_runner.config import RunnerConfig\n"
        "tel = telemetry.setup(RunnerConfig(service='lean'), {}, lambda m: print('log:', m))\n"
        "tel.child_started(['main'], 123, 0)\n"
        "print('sdk while running:', sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
        "tel.child_exited(3, 0.5, 0)\n"
        "print('sdk after exit:', 'opentelemetry.sdk.trace' in sys.modules)\n"
        "print('metrics sdk:', 'opentelemetry.sdk.metrics' in sys.modules)\n"
        "tel.shutdown()\n"
    )
    out = run_py(code)
    assert "log: OpenTelemetry: traces to console (stdout)" in out
    # Only the (empty) namespace package, found while checking that the SDK is installed.
    assert "sdk while running: ['opentelemetry']" in out
    assert "sdk after exit: True" in out
    # Console export has no metric reader, so no metrics SDK either.
    assert "metrics sdk: False" in out
    span = next(line for line in out.splitlines() if line.startswith("{"))
    assert '"process.exit.code": 3' in span and '"name": "main()"' in span


def test_a_run_still_open_at_shutdown_is_exported_then():
    out = run_py(
        "from iac_runner import telemetry\n"
        "from iac_runner.config import RunnerConfig\n"
        "tel = telemetry.setup(RunnerConfig(service='lean'), {}, lambda m: None)\n"
        "tel.child_started(['main'], 7, 0)\n"
        "tel.shutdown()\n"
    )
    spans = [line for line in out.splitlines() if line.startswith("{")]
    assert len(spans) == 1 and '"process.pid": 7' in spans[0]
    assert telemetry.setup(RunnerConfig(), {"OTEL_SDK_DISABLED": "true"}, print).__class__.__name__ == "Telemetry"
