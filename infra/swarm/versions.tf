terraform {
  required_version = ">= 1.5.0"

  required_providers {
    docker = {
      source = "kreuzwerker/docker"
      # Same locally built provider as ../versions.tf (filesystem mirror), pinned exactly.
      version = "4.6.0"
    }
  }

  # State lives per project in the state directory (terraform.ts passes -backend-config=path=...).
  # It holds the services' TLS keys (docker_secret data): keep the state directory private.
  backend "local" {}
}

# A Swarm manager: unix://, tcp:// (TLS via DOCKER_CERT_PATH) or ssh://user@host.
provider "docker" {
  host     = var.docker_host
  ssh_opts = var.ssh_opts
}
