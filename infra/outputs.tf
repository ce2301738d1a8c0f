output "network" {
  description = "The Docker network of the stack."
  value       = { name = data.docker_network.mesh.name, id = data.docker_network.mesh.id }
}

output "services" {
  description = "Per service: host port of the mTLS endpoint, container names and ids."
  value = {
    for k, app in docker_container.app : k => {
      host_port         = var.services[k].host_port
      app_container     = app.name
      app_container_id  = app.id
      sidecar_container = try(docker_container.envoy[k].name, null)
      sidecar_id        = try(docker_container.envoy[k].id, null)
      image             = var.services[k].image
    }
  }
}
