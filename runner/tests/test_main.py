"""The runner as a process: `python -m iac_runner -- ...` and `probe`, driven by signals."""

import re
import signal
import subprocess
import sys
import time

from .conftest import PY, RUNNER_DIR, runner_env

HANDLER = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda s, f: (print('child got SIGTERM', flush=True), sys.exit(0)))\n"
    "print('hello from main', flush=True)\n"
    "time.sleep(60)\n"
)


def start_runner(*argv: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [PY, "-m", "iac_runner", *argv],
        cwd=RUNNER_DIR,
        env=runner_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_port(proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + 15
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"gRPC listening on [\d.]+:(\d+)", line)
        if m:
            return int(m.group(1))
    raise AssertionError("runner did not report its port")


def probe(port: int, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "iac_runner", "probe"],
        cwd=RUNNER_DIR,
        env=runner_env(IAC_LISTEN=f"127.0.0.1:{port}", **env),
        capture_output=True,
        text=True,
        timeout=20,
    )


def test_sigterm_stops_main_gracefully_and_probe_tracks_health():
    proc = start_runner(
        "--", PY, "-c", HANDLER, IAC_LISTEN="127.0.0.1:0", IAC_SERVICE="svc", IAC_HEALTH_STABLE_S="0.3"
    )  # fmt: skip
    try:
        port = read_port(proc)
        time.sleep(0.6)
        ok = probe(port)
        assert ok.returncode == 0, ok.stderr
        assert "SERVING" in ok.stdout
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "hello from main" in out and "child got SIGTERM" in out
    assert "received SIGTERM" in err and "forwarded SIGTERM" in err


def test_exits_with_mains_code_after_failure_and_probe_fails():
    proc = start_runner("--", PY, "-c", "raise SystemExit(5)", IAC_LISTEN="127.0.0.1:0", IAC_RESTART_POLICY="never")
    try:
        port = read_port(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            res = probe(port)
            if res.returncode == 1 and "NOT_SERVING" in res.stdout:
                break
            time.sleep(0.2)
        assert res.returncode == 1 and "NOT_SERVING" in res.stdout
        assert proc.poll() is None, "the runner keeps serving after main() exits"
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 5


def test_probe_fails_when_nothing_listens():
    res = probe(1)
    assert res.returncode == 1 and "UNAVAILABLE" in res.stderr


def test_probe_uses_mtls_in_sidecar_none_mode(certs):
    tls = str(certs["tls"])
    proc = start_runner(
        "--", PY, "-c", "import time; time.sleep(60)",
        IAC_SIDECAR="none", IAC_LISTEN="127.0.0.1:0", IAC_SERVICE="svc", IAC_PROJECT="p", IAC_TLS_DIR=tls,
        IAC_HEALTH_STABLE_S="0",
    )  # fmt: skip
    try:
        port = read_port(proc)
        # the probe presents the service's own cert (spiffe://p/svc): allowed for Health/Check only
        res = probe(port, IAC_SIDECAR="none", IAC_SERVICE="svc", IAC_PROJECT="p", IAC_TLS_DIR=tls)
        assert res.returncode == 0, res.stderr
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_usage_and_config_errors_exit_2():
    res = subprocess.run([PY, "-m", "iac_runner"], cwd=RUNNER_DIR, env=runner_env(), capture_output=True, text=True)
    assert res.returncode == 2 and "usage" in res.stderr
    res = subprocess.run(
        [PY, "-m", "iac_runner", "--", "true"],
        cwd=RUNNER_DIR,
        env=runner_env(IAC_RESTART_POLICY="sometimes"),
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "IAC_RESTART_POLICY" in res.stderr


def test_missing_certs_fail_fast_in_none_mode(tmp_path):
    res = subprocess.run(
        [PY, "-m", "iac_runner", "--", "true"],
        cwd=RUNNER_DIR,
        env=runner_env(IAC_SIDECAR="none", IAC_LISTEN="127.0.0.1:0", IAC_TLS_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert res.returncode == 2 and "ca.pem" in res.stderr


def test_version():
    res = subprocess.run([PY, "-m", "iac_runner", "version"], cwd=RUNNER_DIR, capture_output=True, text=True)
    assert res.returncode == 0 and re.match(r"\d+\.\d+\.\d+", res.stdout)


assert sys.version_info >= (3, 11)
