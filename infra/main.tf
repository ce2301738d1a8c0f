locals {
  envoy_enabled = var.sidecar == "envoy"
  cert_mount    = "/etc/iac/certs"

  # Every container's log is rotated: a main() that prints nonstop cannot fill the disk.
  log_opts = {
    "max-size" = var.log_max_size
    "max-file" = tostring(var.log_max_file)
  }

  common_labels = {
    "io.iac.project"    = var.project
    "io.iac.managed-by" = "terraform"
  }

  # Labels of both containers of a service; everything a project creates is found by them.
  service_labels = {
    for k, svc in var.services : k => merge(local.common_labels, {
      "io.iac.service" = k
      "io.iac.slug"    = svc.slug
      "io.iac.commit"  = svc.commit
      # Bind-mounted files are read at start: a new cert or config must restart the reader.
      "io.iac.config-hash" = svc.config_hash
    })
  }
}

# The network is shared by every project on this engine: the control plane creates it once,
# outside any project's state, and removes it with the last project on it. Read, never owned.
data "docker_network" "mesh" {
  name = var.network_name
}

# Containers run the image ids the control plane resolved (it builds the app images and makes
# sure the Envoy image is present): no docker_image resource, whose every create and refresh
# lists all images on the engine (seconds on a busy one). States of earlier versions forget
# theirs without touching the images (they were keep_locally).
removed {
  from = docker_image.app
  lifecycle {
    destroy = false
  }
}

removed {
  from = docker_image.envoy
  lifecycle {
    destroy = false
  }
}

resource "docker_container" "app" {
  for_each = var.services

  name = "${var.project}-${each.key}"
  # The id (sha256:...), as the provider reads it back; the tag only until the image exists
  # (`iac plan` of an image it would build: the container is to be replaced anyway).
  image    = each.value.image_id != "" ? each.value.image_id : each.value.image
  hostname = each.key
  user     = "10001:10001"
  restart  = var.restart_policy
  must_run = true

  read_only     = true
  tmpfs         = { "/tmp" = "rw,nosuid,nodev,size=64m" }
  security_opts = ["no-new-privileges:true"]
  capabilities {
    drop = ["ALL"]
  }

  # Resource limits (repos file `resources:`; defaults in src/resources.ts). The pids limit is
  # applied by iac with `docker update` after apply: the provider has no pids_limit.
  memory      = each.value.memory_mb
  memory_swap = each.value.memory_mb
  cpus        = each.value.cpus # "1.0": the provider's own spelling (no replacement on re-read)

  stop_signal           = "SIGTERM"
  stop_timeout          = 15
  destroy_grace_seconds = 15

  log_driver = "json-file"
  log_opts   = local.log_opts

  env = concat(
    [
      "IAC_SERVICE=${each.key}",
      "IAC_PROJECT=${var.project}",
      "IAC_COMMIT=${each.value.commit}",
      "IAC_SIDECAR=${var.sidecar}",
      "IAC_RESTART_POLICY=${var.runner_restart_policy}",
      "IAC_HEALTH_STABLE_S=${var.health_stable_s}",
      "IAC_TLS_DIR=${local.cert_mount}",
      "IAC_ALLOWED_CALLERS=${join(",", var.allowed_callers)}",
      "OTEL_SERVICE_NAME=${each.key}",
    ],
    var.otlp_endpoint == "" ? [] : ["OTEL_EXPORTER_OTLP_ENDPOINT=${var.otlp_endpoint}"],
    # The port the app serves its peers on (bind 127.0.0.1: the sidecar forwards to it), and
    # where it calls its peers (:authority = peer name); only with the Envoy sidecar.
    each.value.port > 0 ? ["IAC_PORT=${each.value.port}"] : [],
    local.envoy_enabled ? ["IAC_OUTBOUND=127.0.0.1:15001"] : [],
    [for k in sort(keys(each.value.env)) : "${k}=${each.value.env[k]}"],
  )

  networks_advanced {
    name    = data.docker_network.mesh.id
    aliases = [each.key]
  }

  # The only way in: the mTLS port (Envoy's inbound listener, or the runner itself with
  # sidecar = "none"), published on loopback only. The sidecar shares this namespace.
  ports {
    internal = 15000
    external = each.value.host_port
    ip       = "127.0.0.1"
  }

  # With Envoy the app speaks plaintext on its own loopback and never sees the key.
  dynamic "mounts" {
    for_each = local.envoy_enabled ? [] : [each.value.cert_dir]
    content {
      type      = "bind"
      source    = mounts.value
      target    = local.cert_mount
      read_only = true
    }
  }

  dynamic "labels" {
    for_each = merge(local.service_labels[each.key], { "io.iac.role" = "app" })
    content {
      label = labels.key
      value = labels.value
    }
  }
}

resource "docker_container" "envoy" {
  for_each = local.envoy_enabled ? var.services : {}

  name  = "${var.project}-${each.key}-envoy"
  image = var.envoy_image_id != "" ? var.envoy_image_id : var.envoy_image
  # Share the app's network namespace: by id, not name, or every plan shows a diff.
  network_mode = "container:${docker_container.app[each.key].id}"
  user         = "101:101"
  restart      = var.restart_policy
  must_run     = true

  read_only     = true
  tmpfs         = { "/tmp" = "rw,nosuid,nodev,size=16m" }
  security_opts = ["no-new-privileges:true"]
  capabilities {
    drop = ["ALL"]
  }

  log_driver = "json-file"
  log_opts   = local.log_opts

  entrypoint = ["/usr/local/bin/envoy"]
  command = [
    "-c", "/etc/envoy/envoy.yaml",
    "--service-cluster", var.project,
    "--service-node", each.key,
    "--log-level", "info",
  ]

  mounts {
    type      = "bind"
    source    = each.value.envoy_config
    target    = "/etc/envoy/envoy.yaml"
    read_only = true
  }

  mounts {
    type      = "bind"
    source    = each.value.cert_dir
    target    = local.cert_mount
    read_only = true
  }

  dynamic "labels" {
    for_each = merge(local.service_labels[each.key], { "io.iac.role" = "sidecar" })
    content {
      label = labels.key
      value = labels.value
    }
  }
}
