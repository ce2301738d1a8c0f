"""Swarm target: the runner starts and supervises Envoy (here a stand-in process) next to main()."""

import os
import signal
import socket
import stat
import time

import pytest

from iac_runner.__main__ import envoy_argv
from iac_runner.config import ConfigError, load

from .conftest import PY
from .test_main import HANDLER, probe, read_port, start_runner

# Stands in for the Envoy binary: records its argv and pid, listens like the inbound listener.
FAKE_ENVOY = """#!{py}
import os, signal, socket, sys
with open(os.environ["FAKE_ENVOY_LOG"], "a") as f:
    f.write(f"{{os.getpid()}} {{' '.join(sys.argv[1:])}}\\n")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["IAC_ENVOY_PORT"])))
s.listen()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("fake envoy listening", flush=True)
while True:
    s.accept()[0].close()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runs(log: str) -> list[tuple[int, str]]:
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [(int(pid), argv) for pid, argv in (line.rstrip("\n").split(" ", 1) for line in f)]


def wait_for(cond, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
def fake_envoy(tmp_path):
    path = tmp_path / "envoy"
    path.write_text(FAKE_ENVOY.format(py=PY))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path), str(tmp_path / "envoy.log")


def test_envoy_is_started_restarted_and_stopped_with_the_runner(fake_envoy, tmp_path):
    binary, log = fake_envoy
    port = free_port()
    env = dict(
        IAC_ENVOY_CONFIG=str(tmp_path / "envoy.yaml"),
        IAC_ENVOY_BIN=binary,
        IAC_ENVOY_PORT=str(port),
        IAC_SERVICE="svc",
        IAC_PROJECT="proj",
        FAKE_ENVOY_LOG=log,
        IAC_BACKOFF_INITIAL_S="0.1",
    )
    proc = start_runner("--", PY, "-c", HANDLER, IAC_LISTEN="127.0.0.1:0", **env)
    try:
        grpc_port = read_port(proc)
        wait_for(lambda: len(runs(log)) == 1 and probe(grpc_port, **env).returncode == 0)
        pid, argv = runs(log)[0]
        assert argv == f"-c {tmp_path / 'envoy.yaml'} --service-cluster proj --service-node svc --log-level info"

        # Envoy dies: the probe fails until the runner has started it again.
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: len(runs(log)) == 2)
        wait_for(lambda: probe(grpc_port, **env).returncode == 0)
        assert runs(log)[1][0] != pid

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "started envoy" in err and "envoy was killed by SIGKILL" in err
    assert "child got SIGTERM" in out and "fake envoy listening" in out
    second = runs(log)[1][0]
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)


def test_probe_fails_while_envoy_does_not_listen(tmp_path):
    proc = start_runner("--", PY, "-c", HANDLER, IAC_LISTEN="127.0.0.1:0")
    try:
        grpc_port = read_port(proc)
        wait_for(lambda: probe(grpc_port).returncode == 0)
        down = probe(grpc_port, IAC_ENVOY_CONFIG=str(tmp_path / "e.yaml"), IAC_ENVOY_PORT=str(free_port()))
        assert down.returncode == 1
        assert "probe: envoy 127.0.0.1:" in down.stderr
    finally:
        proc.kill()
        proc.wait()


def test_envoy_config_needs_the_envoy_sidecar_and_an_absolute_path():
    with pytest.raises(ConfigError, match="IAC_ENVOY_CONFIG=.*needs IAC_SIDECAR=envoy"):
        load({"IAC_SIDECAR": "none", "IAC_ENVOY_CONFIG": "/etc/iac/envoy.yaml"})
    with pytest.raises(ConfigError, match="expected an absolute path"):
        load({"IAC_ENVOY_CONFIG": "envoy.yaml"})
    cfg = load({"IAC_ENVOY_CONFIG": "/etc/iac/envoy.yaml", "IAC_SERVICE": "a"})
    assert envoy_argv(cfg)[:3] == ["/usr/local/bin/envoy", "-c", "/etc/iac/envoy.yaml"]
