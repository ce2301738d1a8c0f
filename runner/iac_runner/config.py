"""Runner settings, read once from the environment (see __main__.py for the contract)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

RESTART_POLICIES = ("never", "on-failure", "always")
SIDECARS = ("envoy", "none")
# The runtime API (logs, health) is for the control plane only: the same rule as the Envoy
# sidecar's RBAC filter.
CONTROL_PLANE_ID = "spiffe://iac/control-plane"


class ConfigError(ValueError):
    """A bad IAC_* variable; the message names it and what is allowed."""


def _int(env: Mapping[str, str], key: str, default: int, minimum: int = 0) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ConfigError(f"{key}={raw!r}: expected >= {minimum}")
    return value


def _float(env: Mapping[str, str], key: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: expected a number") from None
    if value < minimum:
        raise ConfigError(f"{key}={raw!r}: expected >= {minimum}")
    return value


def _choice(env: Mapping[str, str], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(key, "").strip() or default
    if value not in allowed:
        raise ConfigError(f"{key}={value!r}: expected one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class RunnerConfig:
    service: str = "app"
    project: str = ""
    commit: str = ""
    sidecar: str = "envoy"
    restart_policy: str = "on-failure"
    max_restarts: int = 10
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    stop_grace_s: float = 8.0
    # SERVING only once main() has run this long without a restart (or exited 0).
    health_stable_s: float = 3.0
    log_buffer_lines: int = 1000
    tls_dir: str = "/etc/iac/certs"
    listen_host: str = "127.0.0.1"
    listen_port: int = 50051
    tls: bool = False
    # With mTLS: SPIFFE ids allowed to call the runtime API (exact, or a prefix ending in "/*").
    allowed_callers: tuple[str, ...] = (CONTROL_PLANE_ID,)
    # Swarm target: Envoy travels in the task; the runner starts and supervises it as well.
    envoy_config: str = ""
    envoy_bin: str = "/usr/local/bin/envoy"
    envoy_port: int = 15000  # Envoy's inbound (mTLS) listener, checked by the probe
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def self_id(self) -> str:
        """This service's own SPIFFE id (its probe calls Health/Check with it); "" without a project."""
        return f"spiffe://{self.project}/{self.service}" if self.project else ""

    @property
    def ca_file(self) -> str:
        return os.path.join(self.tls_dir, "ca.pem")

    @property
    def cert_file(self) -> str:
        return os.path.join(self.tls_dir, "cert.pem")

    @property
    def key_file(self) -> str:
        return os.path.join(self.tls_dir, "key.pem")


def _listen(env: Mapping[str, str], sidecar: str) -> tuple[str, int]:
    default = "127.0.0.1:50051" if sidecar == "envoy" else "0.0.0.0:15000"
    raw = env.get("IAC_LISTEN", "").strip() or default
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"IAC_LISTEN={raw!r}: expected host:port, e.g. 127.0.0.1:50051")
    return host, int(port)


def _allowed_callers(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("IAC_ALLOWED_CALLERS", "")
    ids = tuple(part.strip() for part in raw.split(",") if part.strip()) or (CONTROL_PLANE_ID,)
    for caller in ids:
        if not caller.startswith("spiffe://") or "*" in caller[:-1]:
            raise ConfigError(
                f"IAC_ALLOWED_CALLERS: {caller!r} is not a SPIFFE id; expected spiffe://<trust domain>/<path>, "
                "optionally ending in /* to allow a whole project"
            )
    return ids


def _envoy_config(env: Mapping[str, str], sidecar: str) -> str:
    path = env.get("IAC_ENVOY_CONFIG", "").strip()
    if path and sidecar != "envoy":
        raise ConfigError(f"IAC_ENVOY_CONFIG={path!r} needs IAC_SIDECAR=envoy (got {sidecar!r})")
    if path and not os.path.isabs(path):
        raise ConfigError(f"IAC_ENVOY_CONFIG={path!r}: expected an absolute path")
    return path


def load(env: Mapping[str, str] | None = None) -> RunnerConfig:
    env = os.environ if env is None else env
    sidecar = _choice(env, "IAC_SIDECAR", "envoy", SIDECARS)
    host, port = _listen(env, sidecar)
    return RunnerConfig(
        service=env.get("IAC_SERVICE", "").strip() or env.get("OTEL_SERVICE_NAME", "") or "app",
        project=env.get("IAC_PROJECT", "").strip(),
        commit=env.get("IAC_COMMIT", "").strip(),
        sidecar=sidecar,
        restart_policy=_choice(env, "IAC_RESTART_POLICY", "on-failure", RESTART_POLICIES),
        max_restarts=_int(env, "IAC_MAX_RESTARTS", 10),
        backoff_initial_s=_float(env, "IAC_BACKOFF_INITIAL_S", 1.0),
        backoff_max_s=_float(env, "IAC_BACKOFF_MAX_S", 30.0),
        stop_grace_s=_float(env, "IAC_STOP_GRACE_S", 8.0),
        health_stable_s=_float(env, "IAC_HEALTH_STABLE_S", 3.0),
        log_buffer_lines=_int(env, "IAC_LOG_BUFFER_LINES", 1000, minimum=1),
        tls_dir=env.get("IAC_TLS_DIR", "").strip() or "/etc/iac/certs",
        listen_host=host,
        listen_port=port,
        tls=sidecar == "none",
        allowed_callers=_allowed_callers(env),
        envoy_config=_envoy_config(env, sidecar),
        envoy_bin=env.get("IAC_ENVOY_BIN", "").strip() or "/usr/local/bin/envoy",
        envoy_port=_int(env, "IAC_ENVOY_PORT", 15000, minimum=1),
    )
