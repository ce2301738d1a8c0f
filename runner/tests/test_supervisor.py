import signal
import textwrap

from iac_runner.supervisor import BACKOFF, EXITED, FAILED, RUNNING, STOPPED, container_exit_code

from .conftest import wait_for


def test_exit_zero_is_serving_and_output_is_teed(harness):
    sup = harness.supervisor("import sys; print('out-line'); print('err-line', file=sys.stderr)")
    sup.start()
    assert sup.wait(10)
    state = sup.state
    assert (state.phase, state.exit_code, state.serving, state.pid) == (EXITED, 0, True, 0)
    assert "out-line" in sup._out.text() and "err-line" in sup._err.text()
    lines = {(line.stream, line.msg) for line in sup.buf.tail()}
    assert ("stdout", "out-line") in lines and ("stderr", "err-line") in lines
    assert any(s == "runner" and "exited with code 0" in m for s, m in lines)
    assert any(t.phase == RUNNING and t.serving for t in harness.transitions)


def test_failure_is_not_serving_with_exit_code(harness):
    sup = harness.supervisor("raise SystemExit(3)", restart_policy="never")
    sup.start()
    assert sup.wait(10)
    state = sup.state
    assert (state.phase, state.exit_code, state.serving, state.restarts) == (FAILED, 3, False, 0)
    assert state.message == "main() exited with code 3"
    assert state.uptime() > 0


def test_on_failure_restarts_with_backoff_then_gives_up(harness):
    sup = harness.supervisor("print('try'); raise SystemExit(2)", restart_policy="on-failure", max_restarts=2)
    sup.start()
    assert sup.wait(10)
    state = sup.state
    assert (state.phase, state.exit_code, state.restarts) == (FAILED, 2, 2)
    assert [line.msg for line in sup.buf.tail() if line.stream == "stdout"] == ["try"] * 3
    assert any(t.phase == BACKOFF and not t.serving for t in harness.transitions)
    assert any("giving up after 2 restarts" in line.msg for line in sup.buf.tail())


def test_on_failure_does_not_restart_a_clean_exit(harness):
    sup = harness.supervisor("pass", restart_policy="on-failure")
    sup.start()
    assert sup.wait(10)
    assert (sup.state.phase, sup.state.restarts) == (EXITED, 0)


def test_always_restarts_clean_exits_and_stays_serving_in_backoff(harness):
    sup = harness.supervisor("pass", restart_policy="always", max_restarts=2)
    sup.start()
    assert sup.wait(10)
    assert (sup.state.phase, sup.state.exit_code, sup.state.restarts) == (EXITED, 0, 2)
    assert all(t.serving for t in harness.transitions if t.phase == BACKOFF)


def test_recovers_after_a_restart(harness, tmp_path):
    marker = tmp_path / "seen"
    code = textwrap.dedent(
        f"""
        import os, sys, time
        if not os.path.exists({str(marker)!r}):
            open({str(marker)!r}, "w").close()
            sys.exit(1)
        print("second run")
        time.sleep(30)
        """
    )
    sup = harness.supervisor(code, restart_policy="on-failure")
    sup.start()
    wait_for(lambda: sup.state.restarts == 1 and sup.state.phase == RUNNING, what="restart")
    wait_for(lambda: any(line.msg == "second run" for line in sup.buf.tail()), what="second run output")
    assert sup.state.serving and sup.state.exit_code == 1


def test_sigterm_is_forwarded_and_graceful_exit_code_kept(harness):
    code = textwrap.dedent(
        """
        import signal, sys, time
        def bye(signum, frame):
            print("got", signal.Signals(signum).name, flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    sup = harness.supervisor(code)
    sup.start()
    wait_for(lambda: any(line.msg == "ready" for line in sup.buf.tail()), what="ready")
    assert sup.stop(signal.SIGTERM, grace_s=5) == 0
    assert sup.state.phase == STOPPED and sup.state.exit_code == 0
    msgs = [line.msg for line in sup.buf.tail()]
    assert "got SIGTERM" in msgs
    assert any("forwarded SIGTERM" in m for m in msgs)


def test_sigkill_after_grace_when_sigterm_is_ignored(harness):
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    sup = harness.supervisor(code)
    sup.start()
    wait_for(lambda: any(line.msg == "ready" for line in sup.buf.tail()), what="ready")
    assert sup.stop(signal.SIGTERM, grace_s=0.3) == 137
    assert sup.state.exit_code == -signal.SIGKILL
    assert any("sending SIGKILL" in line.msg for line in sup.buf.tail())


def test_stop_during_backoff_does_not_restart(harness):
    sup = harness.supervisor("raise SystemExit(1)", restart_policy="always", backoff_initial_s=30, backoff_max_s=30)
    sup.start()
    wait_for(lambda: sup.state.phase == BACKOFF, what="backoff")
    assert sup.stop(grace_s=1) == 1
    assert sup.state.phase == STOPPED and sup.state.restarts == 0


def test_other_signals_are_forwarded_without_stopping(harness):
    code = textwrap.dedent(
        """
        import signal, time
        signal.signal(signal.SIGUSR1, lambda s, f: print("usr1", flush=True))
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    sup = harness.supervisor(code)
    sup.start()
    wait_for(lambda: any(line.msg == "ready" for line in sup.buf.tail()), what="ready")
    sup.forward(signal.SIGUSR1)
    wait_for(lambda: any(line.msg == "usr1" for line in sup.buf.tail()), what="usr1")
    assert sup.state.phase == RUNNING


def test_missing_executable_is_exit_127(harness):
    sup = harness.supervisor("")
    sup.argv = ["/nonexistent/main"]
    sup.start()
    assert sup.wait(10)
    assert (sup.state.phase, sup.state.exit_code) == (FAILED, 127)
    assert any("cannot execute" in line.msg for line in sup.buf.tail())


def test_container_exit_code_mapping():
    assert container_exit_code(None) == 0
    assert container_exit_code(4) == 4
    assert container_exit_code(-15) == 143
