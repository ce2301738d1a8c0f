"""Runs main() as a child process: restarts, signal forwarding, output tee, lifecycle state."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import IO

from .config import RunnerConfig
from .logbuf import LogBuffer

STARTING = "starting"
RUNNING = "running"
EXITED = "exited"
BACKOFF = "backoff"
FAILED = "failed"
STOPPING = "stopping"
STOPPED = "stopped"

#: A run that lasted this long resets the exponential backoff.
BACKOFF_RESET_AFTER_S = 60.0
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class State:
    phase: str = STARTING
    exit_code: int | None = None
    restarts: int = 0
    started_at: float | None = None  # time.monotonic() of the first start
    pid: int = 0
    message: str = "starting main()"
    # The current run has lasted the stability window (IAC_HEALTH_STABLE_S) without a restart.
    stable: bool = False

    @property
    def serving(self) -> bool:
        """SERVING = main() has been up for the stability window, or returned 0.

        A run that has not yet lasted the window is not SERVING: a crash loop whose main()
        lives 0.3 s per run is never reported healthy. After a restart inside the window,
        exit_code still holds the failed run's code, so a caller sees NOT_SERVING + that code.
        """
        if self.phase == RUNNING:
            return self.stable
        return self.phase in (EXITED, BACKOFF) and self.exit_code == 0

    def uptime(self, now: float | None = None) -> float:
        if self.started_at is None:
            return 0.0
        return max(0.0, (time.monotonic() if now is None else now) - self.started_at)


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def describe_exit(code: int, name: str = "main()") -> str:
    if code < 0:
        return f"{name} was killed by {signal_name(-code)}"
    return f"{name} exited with code {code}"


def container_exit_code(code: int | None) -> int:
    """Exit status the runner itself ends with: main()'s code, or 128+N for signal N."""
    if code is None:
        return 0
    return 128 - code if code < 0 else code


class ChildWaiter:
    """Collects exit statuses. As PID 1 it reaps every child (orphans included)."""

    def __init__(self, reap_all: bool) -> None:
        self.reap_all = reap_all
        self.lock = threading.Lock()
        self._cond = threading.Condition(self.lock)
        self._ours: set[int] = set()
        self._statuses: dict[int, int] = {}
        self._has_children = threading.Event()
        if reap_all:
            threading.Thread(target=self._reap_loop, name="reaper", daemon=True).start()

    def register(self, pid: int) -> None:
        """Call with `lock` held, right after spawning."""
        self._ours.add(pid)
        self._has_children.set()

    def forget(self, pid: int) -> None:
        with self.lock:
            self._ours.discard(pid)
            self._statuses.pop(pid, None)

    def _reap_loop(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                self._has_children.wait(0.5)
                self._has_children.clear()
                continue
            except InterruptedError:
                continue
            with self.lock:
                if pid in self._ours:
                    self._statuses[pid] = status
                    self._cond.notify_all()

    def wait(self, pid: int) -> int:
        """Blocks until `pid` exits; returns its exit code (negative = killed by signal)."""
        if not self.reap_all:
            while True:
                try:
                    _, status = os.waitpid(pid, 0)
                    break
                except InterruptedError:
                    continue
                except ChildProcessError:
                    status = 0
                    break
        else:
            with self.lock:
                while pid not in self._statuses:
                    self._cond.wait(1.0)
                status = self._statuses.pop(pid)
                self._ours.discard(pid)
        return os.waitstatus_to_exitcode(status)


class Telemetry:
    """Hooks for lifecycle telemetry; the default does nothing (see telemetry.py)."""

    def child_started(self, argv: Sequence[str], pid: int, restarts: int) -> None: ...

    def child_exited(self, code: int, duration_s: float, restarts: int) -> None: ...

    def shutdown(self) -> None: ...


class Supervisor:
    def __init__(
        self,
        argv: Sequence[str],
        cfg: RunnerConfig,
        buf: LogBuffer,
        *,
        telemetry: Telemetry | None = None,
        on_change: Callable[[State], None] | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        stdout: IO[bytes] | None = None,
        stderr: IO[bytes] | None = None,
        reap_all: bool | None = None,
        waiter: ChildWaiter | None = None,
        name: str = "main()",
    ) -> None:
        if not argv:
            raise ValueError("no entrypoint argv given")
        self.argv = list(argv)
        # Run in front of argv (e.g. opentelemetry-instrument); argv is what is reported.
        self.launch_prefix: list[str] = []
        self.name = name  # in log lines and states: "main()", or "envoy" for the in-task sidecar
        self.cfg = cfg
        self.buf = buf
        self.telemetry = telemetry or Telemetry()
        self.on_change = on_change
        self.cwd = cwd
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.env.setdefault("OTEL_SERVICE_NAME", cfg.service)
        self._out = stdout if stdout is not None else sys.stdout.buffer
        self._err = stderr if stderr is not None else sys.stderr.buffer
        self._write_lock = threading.Lock()
        self._lock = threading.RLock()
        self._state = State()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        # Several supervisors in one PID 1 (main() + the in-task Envoy) share one reaper.
        self.waiter = waiter or ChildWaiter(os.getpid() == 1 if reap_all is None else reap_all)

    # ---- state ------------------------------------------------------------------------
    @property
    def state(self) -> State:
        with self._lock:
            return self._state

    def _set(self, **changes: object) -> State:
        with self._lock:
            self._state = replace(self._state, **changes)  # type: ignore[arg-type]
            state = self._state
        if self.on_change is not None:
            self.on_change(state)
        return state

    def event(self, msg: str) -> None:
        """The runner's own log line: container stderr + ring buffer (stream "runner")."""
        self._emit(self._err, "runner", f"[iac-runner] {msg}")

    def _emit(self, out: IO[bytes], stream: str, text: str) -> None:
        self.buf.append(stream, text)
        data = text.encode("utf-8", "replace") + b"\n"
        with self._write_lock:
            try:
                out.write(data)
                out.flush()
            except (OSError, ValueError):
                pass

    # ---- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the supervisor loop has finished (no further restarts)."""
        return self._done.wait(timeout)

    def _run(self) -> None:
        backoff = self.cfg.backoff_initial_s
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                code = self._run_once()
                duration = time.monotonic() - started
                if self._stop.is_set():
                    self._set(phase=STOPPED, exit_code=code, pid=0, message=describe_exit(code, self.name))
                    break
                state = self.state
                restart = self.cfg.restart_policy == "always" or (self.cfg.restart_policy == "on-failure" and code != 0)
                if restart and state.restarts >= self.cfg.max_restarts:
                    self.event(f"giving up after {state.restarts} restarts (IAC_MAX_RESTARTS)")
                    restart = False
                if not restart:
                    self._set(
                        phase=EXITED if code == 0 else FAILED,
                        exit_code=code,
                        pid=0,
                        message=describe_exit(code, self.name),
                    )
                    break
                if duration >= BACKOFF_RESET_AFTER_S:
                    backoff = self.cfg.backoff_initial_s
                delay = min(backoff, self.cfg.backoff_max_s)
                backoff = min(backoff * 2, self.cfg.backoff_max_s) if backoff > 0 else 0
                msg = f"{describe_exit(code, self.name)}; restarting in {delay:.1f}s (policy {self.cfg.restart_policy})"
                self._set(phase=BACKOFF, exit_code=code, pid=0, message=msg)
                self.event(msg)
                if self._stop.wait(delay):
                    self._set(phase=STOPPED, message=describe_exit(code, self.name))
                    break
                self._set(restarts=state.restarts + 1)
        finally:
            self._done.set()

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.waiter.lock:
            proc = subprocess.Popen(
                [*self.launch_prefix, *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
                close_fds=True,
            )
            self.waiter.register(proc.pid)
        return proc

    def _run_once(self) -> int:
        state = self.state
        with self._lock:
            if self._stop.is_set():
                return state.exit_code if state.exit_code is not None else 0
            try:
                proc = self._spawn()
            except OSError as err:
                code = 126 if err.errno in (errno.EACCES, errno.ENOEXEC) else 127
                self.event(f"cannot execute {self.argv[0]!r}: {err.strerror or err}")
                if state.started_at is None:
                    self._set(started_at=time.monotonic())
                return code
            self._proc = proc
            window = self.cfg.health_stable_s
            self._set(
                phase=RUNNING,
                pid=proc.pid,
                started_at=state.started_at if state.started_at is not None else time.monotonic(),
                stable=window <= 0,
                message=self._running_message(state, window),
            )
            if window > 0:
                timer = threading.Timer(window, self._mark_stable, args=(proc.pid,))
                timer.daemon = True
                timer.start()
        self.event(f"started {self.name} pid={proc.pid} argv={self.argv!r}")
        self.telemetry.child_started(self.argv, proc.pid, state.restarts)
        started = time.monotonic()
        pumps = [
            threading.Thread(target=self._pump, args=(proc.stdout, self._out, "stdout"), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, self._err, "stderr"), daemon=True),
        ]
        for t in pumps:
            t.start()
        code = self.waiter.wait(proc.pid)
        proc.returncode = code
        # Grandchildren may hold the pipes open; don't wait for them forever.
        for t in pumps:
            t.join(timeout=2.0)
        with self._lock:
            self._proc = None
        duration = time.monotonic() - started
        self.event(f"{describe_exit(code, self.name)} after {duration:.1f}s")
        self.telemetry.child_exited(code, duration, state.restarts)
        return code

    @staticmethod
    def _running_message(previous: State, window: float) -> str:
        if window <= 0:
            return "main() is running"
        wait = f"SERVING after {window:g} s without a restart"
        if previous.exit_code is not None and previous.exit_code != 0:
            return f"restarted after {describe_exit(previous.exit_code)}; {wait}"
        return f"main() is running; {wait}"

    def _mark_stable(self, pid: int) -> None:
        """Timer callback: the run started with `pid` lasted the window -> SERVING."""
        with self._lock:
            state = self._state
            if state.phase != RUNNING or state.pid != pid or state.stable:
                return
            self._set(stable=True, message="main() is running")

    def _pump(self, pipe: IO[bytes] | None, out: IO[bytes], stream: str) -> None:
        if pipe is None:
            return
        try:
            for raw in iter(lambda: pipe.readline(_READ_CHUNK), b""):
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                self._emit(out, stream, text)
        except (OSError, ValueError):
            pass
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    # ---- signals ----------------------------------------------------------------------
    def _send(self, proc: subprocess.Popen[bytes], sig: int) -> bool:
        try:
            os.killpg(proc.pid, sig)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            try:
                os.kill(proc.pid, sig)
                return True
            except OSError:
                return False

    def forward(self, sig: int) -> None:
        """Passes a signal (e.g. SIGHUP, SIGUSR1) to main() without stopping."""
        with self._lock:
            proc = self._proc
        if proc is not None and self._send(proc, sig):
            self.event(f"forwarded {signal_name(sig)} to pid {proc.pid}")

    def stop(self, sig: int = signal.SIGTERM, grace_s: float | None = None) -> int:
        """Stops main() (sig, then SIGKILL after the grace period); no more restarts.

        Returns the exit status the runner should end with.
        """
        grace = self.cfg.stop_grace_s if grace_s is None else grace_s
        with self._lock:
            self._stop.set()
            proc = self._proc
            if proc is not None:
                self._set(phase=STOPPING, message=f"stopping {self.name} ({signal_name(sig)})")
        if proc is not None and self._send(proc, sig):
            self.event(f"forwarded {signal_name(sig)} to pid {proc.pid}; grace {grace:.1f}s")
        if self._thread is not None and not self._done.wait(grace):
            with self._lock:
                proc = self._proc
            if proc is not None:
                self.event(f"{self.name} still running after {grace:.1f}s; sending SIGKILL")
                self._send(proc, signal.SIGKILL)
            self._done.wait(5.0)
        return container_exit_code(self.state.exit_code)
