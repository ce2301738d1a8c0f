"""Adds OpenTelemetry auto-instrumentation to the app's venv -- only when it fits the app.

Runs in the image build with the app venv's Python, after the app's own packages (and the
project) are installed: `python install.py MODE [--drop-pip] [pip index options]`, MODE = auto
| off; --drop-pip removes the venv's pip at the end (the image has no pip at run time).

  1. `pip check` of the app alone (a broken environment is reported as the reason);
  2. `pip install` of requirements.txt (opentelemetry-distro, the OTLP/HTTP exporter) from the
     wheelhouses with every installed distribution pinned as a constraint, so nothing of the
     app's changes version: either it resolves against the app's pins, or nothing is installed;
  3. `pip check` again; on failure whatever step 2 added is uninstalled.
Then the one-line console exporters (site/) are copied into the venv. The verdict goes to
/opt/iac-telemetry.json (the runner reads it: main() runs under `opentelemetry-instrument`
only when enabled) and to the build output as one `IAC-TELEMETRY on|off: reason` line.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERDICT = Path("/opt/iac-telemetry.json")
WHEELS = [str(HERE / "wheels"), "/opt/iac-wheels/app"]


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def installed() -> dict[str, str]:
    """The venv's distributions (what `pip list` shows), read in-process: a pip run less."""
    importlib.invalidate_caches()
    paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    return {
        re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
        for d in importlib.metadata.distributions(path=paths)
        if d.metadata["Name"]
    }


def drop_pip() -> None:
    """Removes pip from the venv (the files of its RECORD and its two folders), as `pip
    uninstall pip` would: the image needs no pip at run time. Called last."""
    dist = importlib.metadata.distribution("pip")
    base = Path(str(dist.locate_file("")))
    tops = set()
    for f in dist.files or []:
        target = base / f  # never resolved: a link is removed, not what it points to
        if f.parts[0] != "..":
            tops.add(base / f.parts[0])
        elif target.is_file() or target.is_symlink():
            target.unlink()  # bin/pip, bin/pip3, ...
    for top in tops:
        if top.is_dir():
            shutil.rmtree(top)
        elif top.is_file():
            top.unlink()


def why(res: subprocess.CompletedProcess[str]) -> str:
    """The lines of pip's output that say what conflicts (at most 400 characters)."""
    lines = [ln.strip() for ln in (res.stdout + "\n" + res.stderr).splitlines() if ln.strip()]
    keep = [
        ln
        for ln in lines
        if ln.startswith("ERROR:") or " depends on " in ln or "requested" in ln or " has requirement " in ln
    ]
    text = " | ".join(keep or lines[-3:])
    return text[:400]


def verdict(enabled: bool, reason: str) -> int:
    VERDICT.write_text(json.dumps({"enabled": enabled, "reason": reason}) + "\n")
    print(f"IAC-TELEMETRY {'on' if enabled else 'off'}: {reason}", flush=True)
    return 0


def rollback(before: dict[str, str]) -> None:
    added = sorted(set(installed()) - set(before))
    if added:
        pip("uninstall", "--yes", *added)


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "auto"
    index = argv[1:]
    if mode == "off":
        return verdict(False, "telemetry: off for this service")
    before = installed()
    check = pip("check")
    if check.returncode != 0:
        return verdict(False, f"the app's own packages fail `pip check` already: {why(check)}")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
        pins.write("".join(f"{name}=={version}\n" for name, version in sorted(before.items())))
    links = [arg for w in WHEELS if Path(w).is_dir() for arg in ("--find-links", w)]
    res = pip("install", "--no-cache-dir", *index, *links, "-c", pins.name, "-r", str(HERE / "requirements.txt"))
    Path(pins.name).unlink()
    if res.returncode != 0:
        rollback(before)
        return verdict(False, f"OpenTelemetry does not resolve against the app's pins: {why(res)}")
    check = pip("check")
    if check.returncode != 0:
        rollback(before)
        return verdict(False, f"`pip check` fails with OpenTelemetry added: {why(check)}")
    site = Path(sysconfig.get_paths()["purelib"])
    for item in (HERE / "site").iterdir():
        shutil.copytree(item, site / item.name, dirs_exist_ok=True)
    added = sorted(set(installed()) - set(before))
    return verdict(
        True, f"opentelemetry-distro and the OTLP exporter installed ({len(added)} packages); pip check passed"
    )


if __name__ == "__main__":
    # --drop-pip: remove the venv's pip afterwards (the image build's last install step).
    args = [a for a in sys.argv[1:] if a != "--drop-pip"]
    code = main(args)
    if code == 0 and "--drop-pip" in sys.argv[1:]:
        drop_pip()
    sys.exit(code)
