"""PID 1 duties: with reap_all the runner reaps orphans and still sees main()'s exit code.

Runs in a subprocess that makes itself a child subreaper (like PID 1 in a container), so
the reaper thread cannot steal exit statuses from this test process's other children.
"""

import subprocess
import textwrap

from .conftest import PY, RUNNER_DIR, runner_env

SCRIPT = textwrap.dedent(
    """
    import ctypes, io, os, time
    from iac_runner.config import RunnerConfig
    from iac_runner.logbuf import LogBuffer
    from iac_runner.supervisor import Supervisor

    PR_SET_CHILD_SUBREAPER = 36
    assert ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    cfg = RunnerConfig(restart_policy="never")
    # main() leaves an orphan behind that exits after main() did.
    sup = Supervisor(["sh", "-c", "(sleep 0.3; exit 9) & exit 3"], cfg, LogBuffer(50),
                     stdout=io.BytesIO(), stderr=io.BytesIO(), reap_all=True)
    sup.start()
    assert sup.wait(10)
    time.sleep(1.0)
    zombies = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == os.getpid():
                zombies.append(pid)
    print(sup.state.phase, sup.state.exit_code, len(zombies))
    """
)


def test_reaps_orphans_and_keeps_mains_exit_code():
    res = subprocess.run(
        [PY, "-c", SCRIPT], cwd=RUNNER_DIR, env=runner_env(), capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["failed", "3", "0"]
