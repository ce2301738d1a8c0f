terraform {
  required_version = ">= 1.5.0"

  required_providers {
    docker = {
      source = "kreuzwerker/docker"
      # Built locally from the Go module proxy by scripts/bootstrap.sh (commit 96d331c98ff4,
      # v4.6.0 + fixes) into a filesystem mirror; pinned exactly.
      version = "4.6.0"
    }
  }

  # State lives per project under .iac/<project>/ (terraform.ts passes -backend-config=path=...).
  backend "local" {}
}

provider "docker" {
  host     = var.docker_host
  ssh_opts = var.ssh_opts
}
