import pytest

from iac_runner.config import ConfigError, load


def test_defaults_listen_on_loopback_behind_the_sidecar():
    cfg = load({})
    assert (cfg.sidecar, cfg.listen_host, cfg.listen_port, cfg.tls) == ("envoy", "127.0.0.1", 50051, False)
    assert cfg.restart_policy == "on-failure"
    assert cfg.service == "app"
    assert cfg.ca_file == "/etc/iac/certs/ca.pem"


def test_sidecar_none_serves_mtls_on_15000():
    cfg = load({"IAC_SIDECAR": "none", "IAC_SERVICE": "api", "IAC_TLS_DIR": "/certs"})
    assert (cfg.listen_host, cfg.listen_port, cfg.tls) == ("0.0.0.0", 15000, True)
    assert cfg.service == "api"
    assert cfg.key_file == "/certs/key.pem"


def test_overrides():
    cfg = load(
        {
            "IAC_LISTEN": "127.0.0.1:0",
            "IAC_RESTART_POLICY": "always",
            "IAC_STOP_GRACE_S": "2.5",
            "IAC_LOG_BUFFER_LINES": "7",
            "IAC_MAX_RESTARTS": "3",
        }
    )
    assert (cfg.listen_port, cfg.restart_policy, cfg.stop_grace_s) == (0, "always", 2.5)
    assert (cfg.log_buffer_lines, cfg.max_restarts) == (7, 3)


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"IAC_SIDECAR": "istio"}, "IAC_SIDECAR"),
        ({"IAC_RESTART_POLICY": "sometimes"}, "IAC_RESTART_POLICY"),
        ({"IAC_STOP_GRACE_S": "soon"}, "IAC_STOP_GRACE_S"),
        ({"IAC_LOG_BUFFER_LINES": "0"}, "IAC_LOG_BUFFER_LINES"),
        ({"IAC_LISTEN": "50051"}, "IAC_LISTEN"),
    ],
)
def test_bad_values_name_the_variable(env, needle):
    with pytest.raises(ConfigError, match=needle):
        load(env)


def test_allowed_callers_parse_and_validate():
    cfg = load({"IAC_SIDECAR": "none", "IAC_ALLOWED_CALLERS": "spiffe://iac/control-plane, spiffe://demo/*"})
    assert cfg.allowed_callers == ("spiffe://iac/control-plane", "spiffe://demo/*")
    # default: the runtime API is for the control plane only (as Envoy's RBAC rule)
    assert load({}).allowed_callers == ("spiffe://iac/control-plane",)
    assert load({"IAC_ALLOWED_CALLERS": " , "}).allowed_callers == ("spiffe://iac/control-plane",)
    with pytest.raises(ConfigError, match="IAC_ALLOWED_CALLERS"):
        load({"IAC_ALLOWED_CALLERS": "svc-a"})
    with pytest.raises(ConfigError, match="IAC_ALLOWED_CALLERS"):
        load({"IAC_ALLOWED_CALLERS": "spiffe://*/x"})


def test_self_id_is_the_services_spiffe_id():
    assert load({"IAC_PROJECT": "demo", "IAC_SERVICE": "api"}).self_id == "spiffe://demo/api"
    assert load({"IAC_SERVICE": "api"}).self_id == ""
