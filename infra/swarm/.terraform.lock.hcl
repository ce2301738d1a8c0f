# This file is maintained automatically by "terraform init".
# Manual edits may be lost in future updates.

provider "registry.terraform.io/kreuzwerker/docker" {
  version     = "4.6.0"
  constraints = "4.6.0"
  hashes = [
    "h1:Npbo/YRJYErtFMJkQYup1fPajDrq4+rEdC0pGXwZs2s=",
  ]
}
