variable "project" {
  description = "Project name; prefixes container names and labels everything it creates."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.project))
    error_message = "project must be a DNS label (lowercase letters, digits, '-')."
  }
}

variable "network_name" {
  description = "The user-defined Docker network all services join (must exist: shared by projects, created by the control plane)."
  type        = string
  default     = "iacnet"
}

variable "docker_host" {
  description = "Docker Engine endpoint."
  type        = string
  default     = "unix:///var/run/docker.sock"
}

variable "ssh_opts" {
  description = "Extra ssh arguments for an ssh:// docker_host (IAC_SSH_OPTS), e.g. [\"-F\", \"/path/ssh_config\"]."
  type        = list(string)
  default     = []
}

variable "sidecar" {
  description = "\"envoy\": an Envoy sidecar fronts each app with mTLS; \"none\": the runner serves mTLS itself."
  type        = string
  default     = "envoy"

  validation {
    condition     = contains(["envoy", "none"], var.sidecar)
    error_message = "sidecar must be \"envoy\" or \"none\"."
  }
}

variable "envoy_image" {
  description = "Envoy image for the sidecars (must be present locally or pullable)."
  type        = string
  default     = "envoyproxy/envoy:v1.40.0"
}

variable "envoy_image_id" {
  description = "The id (sha256:...) of envoy_image on the engine, resolved by the control plane; \"\" = use the name."
  type        = string
  default     = ""
}

variable "restart_policy" {
  description = "Docker restart policy of the app containers (the runner restarts main() itself)."
  type        = string
  default     = "unless-stopped"
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

variable "health_stable_s" {
  description = "Seconds main() must run without a restart before the runner reports SERVING (IAC_HEALTH_STABLE_S)."
  type        = number
  default     = 3
}

variable "log_max_size" {
  description = "Docker json-file log rotation: size of one log file (e.g. 10m)."
  type        = string
  default     = "10m"
}

variable "log_max_file" {
  description = "Docker json-file log rotation: rotated files kept per container."
  type        = number
  default     = 3
}

variable "allowed_callers" {
  description = "SPIFFE ids (exact, or a prefix ending in /*) that may call the runner's runtime API with sidecar = \"none\" (the control plane); Envoy's RBAC enforces the same."
  type        = list(string)
  default     = []
}

variable "services" {
  description = "Services keyed by name (a DNS label)."
  type = map(object({
    image        = string                  # locally built tag iac/<service>:<hash>
    image_id     = optional(string, "")    # its id (sha256:...); "" = not built yet (plan)
    slug         = string                  # as written in the repos file
    commit       = string                  # resolved commit SHA
    host_port    = number                  # 127.0.0.1:<host_port> -> 15000 (mTLS), stable per service
    cert_dir     = string                  # host dir with ca.pem, cert.pem, key.pem (owned by the reading uid, key 0600)
    envoy_config = string                  # host path of the rendered envoy.yaml ("" with sidecar = "none")
    env          = map(string)             # extra env for the app (from the repos file)
    port         = optional(number, 0)     # the port the app serves peers on (127.0.0.1); 0 = none
    memory_mb    = optional(number, 512)   # hard memory limit (MiB), no swap beyond it
    cpus         = optional(string, "1.0") # CPUs the app may use, spelled as the provider reads it back
    pids         = optional(number, 256)   # process limit (set with docker update: the provider has no pids_limit)
    config_hash  = string                  # hash of the mounted envoy config + cert; a change replaces the containers
  }))
  default = {}
}
