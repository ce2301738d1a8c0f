"""Health that tells the truth: SERVING only after main() has run for the stability window
(IAC_HEALTH_STABLE_S) without a restart, or after it exited 0; a restart inside the window is
NOT_SERVING with main()'s exit code, so the control plane can report FAILED at once."""

import textwrap

from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2

from iac_runner.config import load
from iac_runner.gen import controlplane_pb2 as pb
from iac_runner.supervisor import BACKOFF, FAILED, RUNNING

from .conftest import wait_for
from .test_server import health, served  # noqa: F401  (fixture)


def test_crash_loop_is_never_serving(harness):
    # main() runs 0.3 s, then exits 3: the window (1 s) is never reached.
    sup = harness.supervisor(
        "import time; time.sleep(0.3); raise SystemExit(3)",
        restart_policy="on-failure",
        max_restarts=3,
        health_stable_s=1.0,
    )
    sup.start()
    assert sup.wait(15)
    assert (sup.state.phase, sup.state.exit_code, sup.state.restarts) == (FAILED, 3, 3)
    assert any(t.phase == RUNNING for t in harness.transitions)
    assert not any(t.serving for t in harness.transitions), "a crash loop was reported SERVING"


def test_serving_only_after_the_stability_window(harness):
    sup = harness.supervisor("import time; time.sleep(30)", health_stable_s=0.6)
    sup.start()
    wait_for(lambda: sup.state.phase == RUNNING, what="running")
    assert not sup.state.serving
    assert "SERVING after 0.6 s" in sup.state.message
    wait_for(lambda: sup.state.serving, timeout=5, what="serving after the window")
    assert sup.state.phase == RUNNING and sup.state.exit_code is None
    # The grpc.health.v1 mirror is told by the same transition (no polling needed).
    assert harness.transitions[-1].serving


def test_a_restart_inside_the_window_is_not_serving_with_its_exit_code(harness, tmp_path):
    marker = tmp_path / "ran-once"
    code = textwrap.dedent(
        f"""
        import os, sys, time
        if not os.path.exists({str(marker)!r}):
            open({str(marker)!r}, "w").close()
            sys.exit(5)
        time.sleep(30)
        """
    )
    sup = harness.supervisor(code, restart_policy="on-failure", health_stable_s=0.8)
    sup.start()
    wait_for(lambda: sup.state.restarts == 1 and sup.state.phase == RUNNING, what="restart")
    state = sup.state
    assert (state.serving, state.exit_code) == (False, 5)
    assert "restarted" in state.message and "code 5" in state.message
    assert any(t.phase == BACKOFF and t.exit_code == 5 and not t.serving for t in harness.transitions)
    wait_for(lambda: sup.state.serving, timeout=5, what="serving once stable")


def test_clean_exit_is_serving_without_waiting_for_the_window(harness):
    sup = harness.supervisor("print('done')", health_stable_s=30)
    sup.start()
    assert sup.wait(10)
    assert sup.state.serving


def test_grpc_health_follows_the_window(served):  # noqa: F811
    sup, rt, hs = served("import time; time.sleep(30)", health_stable_s=0.6)
    wait_for(lambda: sup.state.phase == RUNNING, what="running")
    assert rt.HealthCheck(empty_pb2.Empty(), timeout=5).status == pb.HealthStatus.NOT_SERVING
    assert health(hs) == health_pb2.HealthCheckResponse.NOT_SERVING
    wait_for(lambda: health(hs) == health_pb2.HealthCheckResponse.SERVING, timeout=5, what="grpc SERVING")
    assert rt.HealthCheck(empty_pb2.Empty(), timeout=5).status == pb.HealthStatus.SERVING


def test_stable_window_setting():
    assert load({}).health_stable_s == 3.0
    assert load({"IAC_HEALTH_STABLE_S": "0.5"}).health_stable_s == 0.5
