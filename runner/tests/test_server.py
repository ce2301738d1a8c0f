import threading
import time
from dataclasses import replace

import grpc
import pytest
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from iac_runner.gen import controlplane_pb2 as pb
from iac_runner.gen import controlplane_pb2_grpc as pb_grpc
from iac_runner.server import RuntimeServer, TlsFilesError, caller_allowed

from .conftest import wait_for


@pytest.fixture
def served(harness):
    servers: list[RuntimeServer] = []

    def start(code: str, **cfg_kw):
        sup = harness.supervisor(code, **cfg_kw)
        server = RuntimeServer(sup.cfg, sup, sup.buf)
        sup.on_change = server.update
        port = server.start()
        servers.append(server)
        sup.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        return sup, pb_grpc.RuntimeStub(channel), health_pb2_grpc.HealthStub(channel)

    yield start
    for s in servers:
        s.stop(0.2)


def health(stub) -> int:
    return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


def test_healthcheck_serving_while_running(served):
    sup, rt, hs = served("import time; print('up', flush=True); time.sleep(30)")
    wait_for(lambda: any(line.msg == "up" for line in sup.buf.tail()), what="up")
    status = rt.HealthCheck(empty_pb2.Empty(), timeout=5)
    assert status.status == pb.HealthStatus.SERVING
    assert (status.service, status.phase, status.commit) == ("svc", "running", "c0ffee")
    assert not status.HasField("exit_code") and status.pid > 0
    assert list(status.argv)[1:] == ["-c", "import time; print('up', flush=True); time.sleep(30)"]
    assert health(hs) == health_pb2.HealthCheckResponse.SERVING
    named = hs.Check(health_pb2.HealthCheckRequest(service="iac.controlplane.v1.Runtime"), timeout=5)
    assert named.status == health_pb2.HealthCheckResponse.SERVING


def test_failure_reports_not_serving_with_exit_code(served):
    sup, rt, hs = served("print('boom'); raise SystemExit(7)", restart_policy="never")
    assert sup.wait(10)
    status = rt.HealthCheck(empty_pb2.Empty(), timeout=5)
    assert status.status == pb.HealthStatus.NOT_SERVING
    assert (status.phase, status.exit_code, status.restarts) == ("failed", 7, 0)
    assert "code 7" in status.message and status.uptime_seconds > 0
    assert health(hs) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_clean_exit_keeps_serving_and_logs_stay_readable(served):
    sup, rt, hs = served("print('done')")
    assert sup.wait(10)
    assert rt.HealthCheck(empty_pb2.Empty(), timeout=5).status == pb.HealthStatus.SERVING
    assert health(hs) == health_pb2.HealthCheckResponse.SERVING
    msgs = [line.msg for line in rt.StreamLogs(pb.LogRequest(tail=0), timeout=5)]
    assert "done" in msgs


def test_streamlogs_tail(served):
    sup, rt, _ = served("for i in range(20): print(f'line {i}')")
    assert sup.wait(10)
    lines = list(rt.StreamLogs(pb.LogRequest(tail=3), timeout=5))
    assert len(lines) == 3
    assert lines[-1].stream == "runner" and "exited with code 0" in lines[-1].msg
    assert [line.msg for line in lines[:2]] == ["line 18", "line 19"]
    assert lines[0].ts.seconds > 0


def test_streamlogs_follow_gets_new_lines(served):
    code = "import sys, time\nfor i in range(50):\n    print(f'tick {i}', flush=True); time.sleep(0.05)\ntime.sleep(30)"
    sup, rt, _ = served(code)
    wait_for(lambda: any(line.msg == "tick 1" for line in sup.buf.tail()), what="tick 1")
    call = rt.StreamLogs(pb.LogRequest(tail=1, follow=True), timeout=20)
    seen: list[str] = []
    for line in call:
        seen.append(line.msg)
        if line.msg == "tick 10":
            break
    call.cancel()
    assert seen[0].startswith("tick") and "tick 10" in seen
    ticks = [int(m.split()[1]) for m in seen if m.startswith("tick")]
    assert ticks == list(range(ticks[0], 11)), "no gaps or duplicates between tail and follow"


def test_follow_ends_when_server_stops(harness):
    sup = harness.supervisor("import time; time.sleep(30)")
    server = RuntimeServer(sup.cfg, sup, sup.buf)
    port = server.start()
    sup.start()
    rt = pb_grpc.RuntimeStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    call = rt.StreamLogs(pb.LogRequest(follow=True), timeout=20)
    done = threading.Event()

    def drain():
        try:
            for _ in call:
                pass
        except grpc.RpcError:
            pass
        done.set()

    threading.Thread(target=drain, daemon=True).start()
    time.sleep(0.3)
    server.stop(0.5)
    assert done.wait(5)


def test_mtls_requires_a_client_certificate(harness, certs):
    d, tls = certs["dir"], certs["tls"]
    sup = harness.supervisor("import time; time.sleep(30)", tls=True, tls_dir=str(tls))
    server = RuntimeServer(sup.cfg, sup, sup.buf)
    port = server.start()
    sup.start()
    try:
        ca = (d / "ca.pem").read_bytes()
        opts = [("grpc.ssl_target_name_override", "svc")]
        good = grpc.ssl_channel_credentials(ca, (d / "client.key").read_bytes(), (d / "client.pem").read_bytes())
        stub = pb_grpc.RuntimeStub(grpc.secure_channel(f"127.0.0.1:{port}", good, opts))
        assert stub.HealthCheck(empty_pb2.Empty(), timeout=5).status == pb.HealthStatus.SERVING

        anon = grpc.ssl_channel_credentials(ca)
        stub = pb_grpc.RuntimeStub(grpc.secure_channel(f"127.0.0.1:{port}", anon, opts))
        with pytest.raises(grpc.RpcError) as err:
            stub.HealthCheck(empty_pb2.Empty(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE

        plain = pb_grpc.RuntimeStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        with pytest.raises(grpc.RpcError):
            plain.HealthCheck(empty_pb2.Empty(), timeout=3)
    finally:
        server.stop(0.2)


def test_mtls_allow_list_refuses_other_identities_from_the_same_ca(harness, certs):
    d, tls = certs["dir"], certs["tls"]
    allowed = ("spiffe://iac/control-plane", "spiffe://p/*")
    sup = harness.supervisor("import time; time.sleep(30)", tls=True, tls_dir=str(tls), allowed_callers=allowed)
    server = RuntimeServer(sup.cfg, sup, sup.buf)
    port = server.start()
    sup.start()
    ca = (d / "ca.pem").read_bytes()
    opts = [("grpc.ssl_target_name_override", "svc")]

    def channel(name: str) -> grpc.Channel:
        creds = grpc.ssl_channel_credentials(ca, (d / f"{name}.key").read_bytes(), (d / f"{name}.pem").read_bytes())
        return grpc.secure_channel(f"127.0.0.1:{port}", creds, opts)

    try:
        # the control plane (exact id) and a service of the project (project wildcard) pass
        for name in ("client", "server"):
            assert pb_grpc.RuntimeStub(channel(name)).HealthCheck(empty_pb2.Empty(), timeout=5).status == (
                pb.HealthStatus.SERVING
            )
        # a valid cert from the same CA but another project is refused, on every service
        stranger = channel("stranger")
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.RuntimeStub(stranger).HealthCheck(empty_pb2.Empty(), timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "spiffe://other-project/svc" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            list(pb_grpc.RuntimeStub(stranger).StreamLogs(pb.LogRequest(tail=5), timeout=5))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as err:
            health_pb2_grpc.HealthStub(stranger).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        server.stop(0.2)


def test_runtime_api_is_for_the_control_plane_only_by_default(harness, certs):
    """IAC_SIDECAR=none, default allow-list: the control plane may call Runtime and Health; a
    peer of the same project, another project's service and unknown methods are refused with
    PERMISSION_DENIED; the service's own identity may only probe Health/Check."""
    d, tls = certs["dir"], certs["tls"]
    sup = harness.supervisor("print('secret in the logs', flush=True); import time; time.sleep(30)", tls=True,
                             tls_dir=str(tls), project="p")  # fmt: skip
    assert sup.cfg.allowed_callers == ("spiffe://iac/control-plane",) and sup.cfg.self_id == "spiffe://p/svc"
    server = RuntimeServer(sup.cfg, sup, sup.buf)
    port = server.start()
    sup.start()
    ca = (d / "ca.pem").read_bytes()
    opts = [("grpc.ssl_target_name_override", "svc")]

    def channel(name: str) -> grpc.Channel:
        creds = grpc.ssl_channel_credentials(ca, (d / f"{name}.key").read_bytes(), (d / f"{name}.pem").read_bytes())
        return grpc.secure_channel(f"127.0.0.1:{port}", creds, opts)

    def code(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
        try:
            call()
        except grpc.RpcError as err:
            return err.code()
        return grpc.StatusCode.OK

    def calls(ch: grpc.Channel) -> dict[str, grpc.StatusCode]:
        rt, hs = pb_grpc.RuntimeStub(ch), health_pb2_grpc.HealthStub(ch)
        unknown = ch.unary_unary("/mesh.Echo/Say")
        return {
            "HealthCheck": code(lambda: rt.HealthCheck(empty_pb2.Empty(), timeout=5)),
            "StreamLogs": code(lambda: list(rt.StreamLogs(pb.LogRequest(tail=5), timeout=5))),
            "Health.Check": code(lambda: hs.Check(health_pb2.HealthCheckRequest(), timeout=5)),
            "unknown": code(lambda: unknown(b"", timeout=5)),
        }

    try:
        wait_for(lambda: any(line.msg == "secret in the logs" for line in sup.buf.tail()), what="main() output")
        ok, denied = grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED
        assert calls(channel("client")) == {
            "HealthCheck": ok,
            "StreamLogs": ok,
            "Health.Check": ok,
            "unknown": grpc.StatusCode.UNIMPLEMENTED,
        }
        # a service of the same project (a valid cert, a peer) cannot read the logs or probe
        assert calls(channel("peer")) == dict.fromkeys(("HealthCheck", "StreamLogs", "Health.Check", "unknown"), denied)
        assert calls(channel("stranger")) == dict.fromkeys(
            ("HealthCheck", "StreamLogs", "Health.Check", "unknown"), denied
        )
        # the service's own identity: its HEALTHCHECK probe (Health/Check) and nothing else
        assert calls(channel("server")) == {
            "HealthCheck": denied,
            "StreamLogs": denied,
            "Health.Check": ok,
            "unknown": denied,
        }
        with pytest.raises(grpc.RpcError) as err:
            list(pb_grpc.RuntimeStub(channel("peer")).StreamLogs(pb.LogRequest(tail=5), timeout=5))
        assert "spiffe://p/peer" in err.value.details() and "control-plane" in err.value.details()
    finally:
        server.stop(0.2)


def test_caller_allowed_rules():
    assert caller_allowed(["spiffe://iac/control-plane"], ("spiffe://iac/control-plane",))
    assert caller_allowed(["spiffe://p/a"], ("spiffe://p/*",))
    assert not caller_allowed(["spiffe://pp/a"], ("spiffe://p/*",))
    assert not caller_allowed(["spiffe://p"], ("spiffe://p/*",))
    assert not caller_allowed([], ("spiffe://p/*",))


def test_missing_tls_files_are_named(harness, tmp_path):
    sup = harness.supervisor("pass", tls=True, tls_dir=str(tmp_path))
    server = RuntimeServer(replace(sup.cfg), sup, sup.buf)
    with pytest.raises(TlsFilesError, match="ca.pem"):
        server.start()


def test_follow_that_falls_behind_gets_a_skipped_marker(served):
    # A reader that stops reading while main() prints far more than the buffer (100 lines here)
    # and the transport's flow-control windows hold: when it reads again, the evicted lines are
    # replaced by one marker with their count, and nothing else is missing.
    code = (
        "import time\ntime.sleep(0.5)\n"
        "for i in range(2000):\n    print(f'n {i} ' + 'x' * 300, flush=True)\ntime.sleep(30)"
    )
    sup, rt, _ = served(code)
    call = rt.StreamLogs(pb.LogRequest(tail=1, follow=True), timeout=20)
    # The stream is open; its first line is the runner's "started main()" (main() then sleeps).
    assert next(call).stream == "runner"
    wait_for(lambda: any(line.msg.startswith("n 1999 ") for line in sup.buf.tail()), what="n 1999")
    seen: list[pb.LogLine] = []
    for line in call:
        seen.append(line)
        if line.msg.startswith("n 1999 "):
            break
    call.cancel()
    markers = [i for i, line in enumerate(seen) if "lines skipped" in line.msg]
    assert len(markers) >= 1
    for at in markers:
        assert seen[at].stream == "runner"
        skipped = int(seen[at].msg.split()[1])
        earlier = [int(x.msg.split()[1]) for x in seen[:at] if x.msg.startswith("n ")]
        before = earlier[-1] if earlier else -1  # the first lines can be the skipped ones
        after = next(int(x.msg.split()[1]) for x in seen[at + 1 :] if x.msg.startswith("n "))
        assert after - before - 1 == skipped, "the marker counts exactly the missing lines"
    numbered = [int(line.msg.split()[1]) for line in seen if line.msg.startswith("n ")]
    skipped_total = sum(int(seen[at].msg.split()[1]) for at in markers)
    assert numbered == sorted(set(numbered)) and numbered[-1] == 1999
    assert len(numbered) + skipped_total == 2000, "every line is read or counted as skipped"
