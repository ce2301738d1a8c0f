output "network" {
  description = "The project's overlay network."
  value       = { name = docker_network.mesh.name, id = docker_network.mesh.id }
}

output "services" {
  description = "Per service: Swarm service name and id, published (host-mode) port, image."
  value = {
    for k, svc in docker_service.app : k => {
      service        = svc.name
      service_id     = svc.id
      published_port = var.services[k].published_port
      replicas       = var.services[k].replicas
      image          = var.services[k].image
    }
  }
}
