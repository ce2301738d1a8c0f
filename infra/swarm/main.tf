# The swarm target: one docker_service per repo, Envoy inside the task (the runner supervises
# it next to main()), TLS material as Swarm secrets/configs named by content hash.
#
# This module is deliberately limited to what works on kernels without IPVS and ESP (and
# everywhere else): endpoint_mode = dnsrr (no virtual IP, no ingress routing mesh), ports
# published in host mode on the nodes that run a task, an unencrypted overlay (service
# traffic is mutual TLS end to end through Envoy).
locals {
  cert_dir     = "/etc/iac/certs"
  envoy_config = "/etc/iac/envoy.yaml"
  app_uid      = "10001"

  common_labels = {
    "io.iac.project"    = var.project
    "io.iac.managed-by" = "terraform"
    "io.iac.target"     = "swarm"
  }

  # An update is judged healthy only after the health check had the chance to fail.
  monitor_s = var.health.start_period_s + var.health.interval_s * var.health.retries + var.health.timeout_s + 2

  ca_hash = substr(sha256(file(var.ca_file)), 0, 16)

  files = {
    for k, svc in var.services : k => {
      prefix     = substr("${var.project}-${k}", 0, 40)
      cert       = file(svc.cert_file)
      cert_hash  = substr(sha256(file(svc.cert_file)), 0, 16)
      key_hash   = substr(sha256(file(svc.key_file)), 0, 16)
      envoy_hash = substr(sha256(file(svc.envoy_config)), 0, 16)
    }
  }

  service_labels = {
    for k, svc in var.services : k => merge(local.common_labels, { "io.iac.service" = k })
  }
}

resource "docker_network" "mesh" {
  name       = var.network_name
  driver     = "overlay"
  attachable = false
  # No "encrypted" option: IPsec (ESP) is not available everywhere; mTLS encrypts the traffic.

  dynamic "labels" {
    for_each = local.common_labels
    content {
      label = labels.key
      value = labels.value
    }
  }
}

# The CA certificate only (public); the CA key stays on the control machine.
resource "docker_config" "ca" {
  name = "${substr(var.project, 0, 40)}-ca-${local.ca_hash}"
  data = filebase64(var.ca_file)

  dynamic "labels" {
    for_each = local.common_labels
    content {
      label = labels.key
      value = labels.value
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "docker_config" "envoy" {
  for_each = var.services

  name = "${local.files[each.key].prefix}-envoy-${local.files[each.key].envoy_hash}"
  data = filebase64(each.value.envoy_config)

  dynamic "labels" {
    for_each = local.common_labels
    content {
      label = labels.key
      value = labels.value
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Named by content hash: a new cert is a new secret, the service rolls to it, the old one goes.
resource "docker_secret" "cert" {
  for_each = var.services

  name = "${local.files[each.key].prefix}-cert-${local.files[each.key].cert_hash}"
  data = filebase64(each.value.cert_file)

  # Stable labels only: a label change replaces a secret, and the replacement (same content,
  # same name) would collide with the old one under create_before_destroy.
  dynamic "labels" {
    for_each = local.service_labels[each.key]
    content {
      label = labels.key
      value = labels.value
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "docker_secret" "key" {
  for_each = var.services

  name = "${local.files[each.key].prefix}-key-${local.files[each.key].key_hash}"
  data = filebase64(each.value.key_file)

  dynamic "labels" {
    for_each = local.service_labels[each.key]
    content {
      label = labels.key
      value = labels.value
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "docker_service" "app" {
  for_each = var.services

  name = "${var.project}-${each.key}"

  # Service labels stay stable (a change here replaces the whole service).
  dynamic "labels" {
    for_each = local.service_labels[each.key]
    content {
      label = labels.key
      value = labels.value
    }
  }

  task_spec {
    container_spec {
      image     = each.value.image
      hostname  = "${each.key}-{{.Task.Slot}}"
      user      = "${local.app_uid}:${local.app_uid}"
      read_only = true
      cap_drop  = ["ALL"]

      stop_signal       = "SIGTERM"
      stop_grace_period = "15s"

      env = merge(
        each.value.env,
        {
          IAC_SERVICE         = each.key
          IAC_PROJECT         = var.project
          IAC_COMMIT          = each.value.commit
          IAC_SIDECAR         = "envoy"
          IAC_ENVOY_CONFIG    = local.envoy_config
          IAC_RESTART_POLICY  = var.runner_restart_policy
          IAC_TLS_DIR         = local.cert_dir
          IAC_ALLOWED_CALLERS = join(",", var.allowed_callers)
          OTEL_SERVICE_NAME   = each.key
        },
        var.otlp_endpoint == "" ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT = var.otlp_endpoint },
      )

      # Stable labels only: with kreuzwerker/docker 4.6.0 a change of the container labels
      # REPLACES the service (remove + create, no rollback). The commit travels in IAC_COMMIT.
      dynamic "labels" {
        for_each = local.service_labels[each.key]
        content {
          label = labels.key
          value = labels.value
        }
      }

      mounts {
        type   = "tmpfs"
        target = "/tmp"
        tmpfs_options {
          size_bytes = 64 * 1024 * 1024
        }
      }

      # Readable by the task's user only (app and Envoy share it inside the task).
      secrets {
        secret_id   = docker_secret.key[each.key].id
        secret_name = docker_secret.key[each.key].name
        file_name   = "${local.cert_dir}/key.pem"
        file_uid    = local.app_uid
        file_gid    = local.app_uid
        file_mode   = 256 # 0400
      }

      secrets {
        secret_id   = docker_secret.cert[each.key].id
        secret_name = docker_secret.cert[each.key].name
        file_name   = "${local.cert_dir}/cert.pem"
        file_uid    = local.app_uid
        file_gid    = local.app_uid
        file_mode   = 292 # 0444
      }

      configs {
        config_id   = docker_config.ca.id
        config_name = docker_config.ca.name
        file_name   = "${local.cert_dir}/ca.pem"
        file_mode   = 292
      }

      configs {
        config_id   = docker_config.envoy[each.key].id
        config_name = docker_config.envoy[each.key].name
        file_name   = local.envoy_config
        file_mode   = 292
      }

      healthcheck {
        test         = ["CMD", "/opt/iac-runner/bin/python", "-m", "iac_runner", "probe"]
        interval     = "${var.health.interval_s}s"
        timeout      = "${var.health.timeout_s}s"
        retries      = var.health.retries
        start_period = "${var.health.start_period_s}s"
      }
    }

    networks_advanced {
      id      = docker_network.mesh.id
      aliases = [each.key]
    }

    placement {
      constraints = each.value.constraints
    }

    restart_policy {
      condition    = "any"
      delay        = "2s"
      max_attempts = 0
      window       = "0s"
    }
  }

  mode {
    replicated {
      replicas = each.value.replicas
    }
  }

  update_config {
    parallelism       = 1
    delay             = "1s"
    order             = "start-first"
    failure_action    = "rollback"
    monitor           = "${local.monitor_s}s"
    max_failure_ratio = "0"
  }

  rollback_config {
    parallelism       = 1
    delay             = "1s"
    order             = "start-first"
    failure_action    = "pause"
    monitor           = "${local.monitor_s}s"
    max_failure_ratio = "0"
  }

  # dnsrr: peers resolve the service name to its tasks' addresses on the overlay (no VIP).
  endpoint_spec {
    mode = "dnsrr"
    ports {
      name           = "mtls"
      protocol       = "tcp"
      target_port    = 15000
      published_port = each.value.published_port
      publish_mode   = "host"
    }
  }

  # No converge_config: on a failed update the provider would delete the service (and with it
  # the old version that Swarm rolled back to). The control plane watches the rollout instead
  # (UpdateStatus + tasks) and reports a rollback with its reason.
}
