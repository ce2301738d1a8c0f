"""Shared fixtures: real child processes, a real gRPC server on a loopback port."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from iac_runner.config import RunnerConfig
from iac_runner.logbuf import LogBuffer
from iac_runner.supervisor import State, Supervisor

PY = sys.executable
RUNNER_DIR = Path(__file__).resolve().parent.parent


class Sink(io.BytesIO):
    """A thread-safe byte sink standing in for the container's stdout/stderr."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def write(self, b) -> int:  # type: ignore[override]
        with self._lock:
            return super().write(b)

    def text(self) -> str:
        with self._lock:
            return self.getvalue().decode()


def wait_for(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_cfg(**kw) -> RunnerConfig:
    base = RunnerConfig(
        service="svc",
        commit="c0ffee",
        restart_policy="never",
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        stop_grace_s=3.0,
        health_stable_s=0.0,  # tests of the window set it (test_health_window.py)
        log_buffer_lines=100,
        listen_host="127.0.0.1",
        listen_port=0,
    )
    return replace(base, **kw)


class Harness:
    def __init__(self) -> None:
        self.sups: list[Supervisor] = []
        self.transitions: list[State] = []

    def supervisor(self, code: str, **cfg_kw) -> Supervisor:
        cfg = make_cfg(**cfg_kw)
        buf = LogBuffer(cfg.log_buffer_lines)
        sup = Supervisor(
            [PY, "-c", code],
            cfg,
            buf,
            stdout=Sink(),
            stderr=Sink(),
            on_change=self.transitions.append,
            reap_all=False,
        )
        self.sups.append(sup)
        return sup

    def close(self) -> None:
        for sup in self.sups:
            sup.stop(grace_s=1.0)


@pytest.fixture
def harness():
    h = Harness()
    yield h
    h.close()


def run_openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> dict[str, Path]:
    """A dev CA, a server cert for DNS:svc and a client cert (both EKUs), via the openssl CLI."""
    d = tmp_path_factory.mktemp("certs")
    run_openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=d)
    run_openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=test-ca", "-days", "2", "-out", "ca.pem", cwd=d)
    for name, san in (
        ("server", "DNS:svc,URI:spiffe://p/svc"),
        ("client", "DNS:iac-control-plane,URI:spiffe://iac/control-plane"),
        ("stranger", "DNS:svc,URI:spiffe://other-project/svc"),
        ("peer", "DNS:peer,URI:spiffe://p/peer"),
    ):
        run_openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=d)
        run_openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out", f"{name}.csr", cwd=d)
        ext = d / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\n")
        run_openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", str(ext), "-out", f"{name}.pem", cwd=d,
        )  # fmt: skip
    tls = d / "tls"
    tls.mkdir()
    (tls / "ca.pem").write_bytes((d / "ca.pem").read_bytes())
    (tls / "cert.pem").write_bytes((d / "server.pem").read_bytes())
    (tls / "key.pem").write_bytes((d / "server.key").read_bytes())
    return {"dir": d, "tls": tls}


def runner_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IAC_", "OTEL_"))}
    env.update({"PYTHONPATH": str(RUNNER_DIR), "OTEL_TRACES_EXPORTER": "none", **extra})
    return env
