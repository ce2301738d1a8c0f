variable "project" {
  description = "Project name; prefixes service, network, secret and config names and labels them."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.project))
    error_message = "project must be a DNS label (lowercase letters, digits, '-')."
  }
}

variable "network_name" {
  description = "The project's overlay network (created and removed with the project)."
  type        = string
}

variable "docker_host" {
  description = "Docker Engine endpoint of a Swarm manager."
  type        = string
  default     = "unix:///var/run/docker.sock"
}

variable "ssh_opts" {
  description = "Extra ssh arguments for an ssh:// docker_host (IAC_SSH_OPTS), e.g. [\"-F\", \"/path/ssh_config\"]."
  type        = list(string)
  default     = []
}

variable "ca_file" {
  description = "Control-machine path of the CA certificate bundle (ca.pem); the CA key never leaves that machine."
  type        = string
}

variable "otlp_endpoint" {
  description = "OTEL_EXPORTER_OTLP_ENDPOINT handed to every app (empty = console export)."
  type        = string
  default     = ""
}

variable "runner_restart_policy" {
  description = "How the runner restarts main(): never, on-failure or always."
  type        = string
  default     = "on-failure"
}

variable "allowed_callers" {
  description = "SPIFFE ids the runner accepts (kept in step with the single-host module)."
  type        = list(string)
  default     = []
}

variable "health" {
  description = "Task health check (the runner's probe: main() SERVING and Envoy listening). Swarm replaces unhealthy tasks and an update that produces them is rolled back."
  type = object({
    interval_s     = number
    timeout_s      = number
    retries        = number
    start_period_s = number
  })
  default = { interval_s = 3, timeout_s = 3, retries = 3, start_period_s = 5 }
}

variable "services" {
  description = "Services keyed by name (a DNS label)."
  type = map(object({
    image          = string       # task image (app + Envoy) by image id "sha256:..." (or a registry reference)
    slug           = string       # as written in the repos file
    commit         = string       # resolved commit SHA
    replicas       = number       # tasks of the service (repos file `replicas:`, default 1)
    constraints    = list(string) # placement constraints (repos file `placement:`), e.g. "node.labels.zone==a"
    published_port = number       # host-mode port on each node running a task -> Envoy's 15000 (mTLS)
    cert_file      = string       # control-machine paths of the service's leaf cert and key
    key_file       = string
    envoy_config   = string # rendered envoy.yaml (certs under /etc/iac/certs)
    env            = map(string)
  }))
  default = {}
}
