#!/usr/bin/env bash
# A throw-away multi-node Docker Swarm on ONE machine, for the swarm target's tests.
#
# The daemons do pull (from the harness registry, for IAC_REGISTRY); images referenced by id
# (docker save | load) are never pulled, so the unreachable Docker Hub is never asked.
#
# Each node is a separate dockerd in its own network namespace (iacsw-<node>) with its own
# data-root, exec-root, pidfile, unix socket and cgroup parent. The node namespaces hang off a
# bridge that lives in a dedicated hub namespace (iacsw-hub), so nothing is bridged or NATed
# in the host's namespace and the main dockerd (/var/run/docker.sock) is never touched. One
# veth (iacsw0) gives the host an address on the hub so the control plane can reach the
# nodes' host-mode published ports. The hub range is private and exists only inside these
# namespaces.
#
#   harness.sh up [N]        start N nodes (default 3), n1 = manager, others join as workers
#   harness.sh load IMAGE..  copy images from the main engine into every node (docker save|load)
#   harness.sh kill NODE     crash a node: SIGKILL its daemon, containerd, shims and containers
#   harness.sh revive NODE   start a killed node again (same data-root: it rejoins the swarm)
#   harness.sh status        node list as the manager sees it
#   harness.sh registry      start a plain-HTTP registry (Debian's docker-registry) on the hub,
#                            at $NET.1:5000, which every node trusts (insecure-registries)
#   harness.sh env           print DOCKER_HOST=... for the manager
#   harness.sh down          stop everything, remove namespaces, sockets, cgroups, data roots
#
# Needs root, iproute2, dockerd, and a kernel with veth, bridge, vxlan. This kernel has no
# IPVS and no ESP: services must use endpoint_mode=dnsrr, host-mode ports, unencrypted overlays.
set -euo pipefail

PREFIX=${IAC_SWARM_PREFIX:-iacsw}                 # netns / interface / cgroup prefix
NET=${IAC_SWARM_NET:-10.213.0}                    # hub /24 (private, inside our namespaces)
POOL=${IAC_SWARM_POOL:-10.214.0.0/16}             # swarm overlay address pool
RUN=${IAC_SWARM_RUN:-/run/iac-swarm}              # sockets, pidfiles, logs, node list
EXEC=${IAC_SWARM_EXEC:-/run/$PREFIX}              # short exec-roots (unix socket path limits)
DATA=${IAC_SWARM_DATA:-/var/lib/iac-swarm}        # data roots
MAIN_DOCKER_HOST=${IAC_SWARM_MAIN_HOST:-unix:///var/run/docker.sock}
HUB=$PREFIX-hub
HOSTIF=${PREFIX}0

log() { printf '[harness %s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
ms() { date +%s%3N; }

node_ip() { echo "$NET.$((10 + ${1#n}))"; }
registry_addr() { echo "$NET.1:5000"; }
node_sock() { echo "$RUN/$1.sock"; }
node_host() { echo "unix://$RUN/$1.sock"; }
ndocker() {
  local n=$1
  shift
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 docker -H "$(node_host "$n")" "$@"
}
nodes() { [[ -f $RUN/nodes ]] && cat "$RUN/nodes" || true; }

# cgroup v1 controllers mounted on the host (ip netns exec remounts /sys, hiding them).
cgroup_mounts() { awk '$3 ~ /^cgroup2?$/ {print $2" "$3" "$4}' /proc/mounts; }

hub_up() {
  ip netns list | grep -qw "^$HUB" && return 0
  ip netns add "$HUB"
  ip -n "$HUB" link set lo up
  ip -n "$HUB" link add br0 type bridge
  ip -n "$HUB" link set br0 up
  # host leg: iacsw0 (host) <-> h0 (hub bridge port)
  ip link add "$HOSTIF" type veth peer name h0 netns "$HUB"
  ip -n "$HUB" link set h0 master br0 up
  ip addr add "$NET.1/24" dev "$HOSTIF"
  ip link set "$HOSTIF" up
}

# The node's daemon runs in the node's netns, in a private mount namespace (ip netns exec),
# with the host's cgroup hierarchies mounted again and its processes in an own cgroup.
start_daemon() {
  local n=$1 ip
  ip=$(node_ip "$n")
  mkdir -p "$RUN" "$EXEC/$n" "$DATA/$n"
  # Every node trusts the harness registry (plain HTTP, only on the hub's private range).
  printf '{"insecure-registries": ["%s"]}\n' "$(registry_addr)" >"$RUN/$n.json"
  local cg="/$PREFIX/$n"
  # shellcheck disable=SC2016
  ip netns exec "$PREFIX-$n" unshare --uts \
    env -i PATH="$PATH" CGROUP_MOUNTS="$(cgroup_mounts)" CG="$cg" NODE="$n" \
    bash -c '
      set -e
      hostname "$NODE"
      mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
      while read -r dir type opts; do
        mkdir -p "$dir"
        mount -t "$type" -o "$opts" "$type" "$dir"
      done <<<"$CGROUP_MOUNTS"
      for c in /sys/fs/cgroup/*/; do
        [ -f "$c/cgroup.procs" ] || continue
        mkdir -p "$c$CG/daemon" && echo $$ >"$c$CG/daemon/cgroup.procs" || true
      done
      exec "$@"' _ \
    dockerd --config-file "$RUN/$n.json" \
    --data-root "$DATA/$n" --exec-root "$EXEC/$n" --pidfile "$RUN/$n.pid" \
    -H "unix://$RUN/$n.sock" \
    --cgroup-parent "$cg" --exec-opt native.cgroupdriver=cgroupfs \
    --iptables=true --ip-forward=true --userland-proxy=false \
    --swarm-default-advertise-addr "$ip" --log-level warn \
    >>"$RUN/$n.log" 2>&1 &
  local t0
  t0=$(ms)
  until ndocker "$n" version >/dev/null 2>&1; do
    (($(ms) - t0 < 60000)) || die "node $n: dockerd did not answer on $(node_sock "$n") within 60 s (see $RUN/$n.log)"
    sleep 0.2
  done
  log "node $n: dockerd up at $(node_host "$n") ($ip) in $(($(ms) - t0)) ms"
}

node_up() {
  local n=$1 ip
  ip=$(node_ip "$n")
  if ! ip netns list | grep -qw "^$PREFIX-$n"; then
    # ip netns exec binds /etc/netns/<ns>/* over /etc: no reachable resolver, lookups fail fast
    mkdir -p "/etc/netns/$PREFIX-$n"
    echo "nameserver 127.0.0.1" >"/etc/netns/$PREFIX-$n/resolv.conf"
    ip netns add "$PREFIX-$n"
    ip -n "$PREFIX-$n" link set lo up
    ip link add "$n" netns "$HUB" type veth peer name eth0 netns "$PREFIX-$n"
    ip -n "$HUB" link set "$n" master br0 up
    ip -n "$PREFIX-$n" addr add "$ip/24" dev eth0
    ip -n "$PREFIX-$n" link set eth0 up
    # no default route: a node reaches the hub and nothing else
  fi
  start_daemon "$n"
}

cmd_up() {
  local count=${1:-3} t0
  t0=$(ms)
  [[ $(id -u) == 0 ]] || die "needs root (ip netns, dockerd)"
  [[ -z $(nodes) ]] || die "a harness is already up ($(nodes | tr '\n' ' ')); run '$0 down' first"
  mkdir -p "$RUN"
  hub_up
  local i
  for ((i = 1; i <= count; i++)); do echo "n$i"; done >"$RUN/nodes"
  for ((i = 1; i <= count; i++)); do node_up "n$i" & done
  wait
  ndocker n1 swarm init --advertise-addr "$(node_ip n1)" \
    --default-addr-pool "$POOL" --default-addr-pool-mask-length 24 >/dev/null
  local token
  token=$(ndocker n1 swarm join-token -q worker)
  for ((i = 2; i <= count; i++)); do
    ndocker "n$i" swarm join --token "$token" --advertise-addr "$(node_ip "n$i")" "$(node_ip n1):2377" >/dev/null &
  done
  wait
  for ((i = 1; i <= count; i++)); do
    ndocker n1 node update --label-add "iac.node=n$i" "$(ndocker "n$i" info --format '{{.Swarm.NodeID}}')" >/dev/null
  done
  log "swarm of $count nodes up in $(($(ms) - t0)) ms"
  cmd_status
}

cmd_load() {
  (($# > 0)) || die "usage: $0 load IMAGE..."
  local t0 tar
  t0=$(ms)
  tar=$(mktemp "$RUN/images.XXXXXX.tar")
  docker -H "$MAIN_DOCKER_HOST" save -o "$tar" "$@"
  local n pids=()
  for n in $(nodes); do
    ndocker "$n" load -q -i "$tar" >/dev/null &
    pids+=($!)
  done
  local p rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  rm -f "$tar"
  ((rc == 0)) || die "docker load failed on a node"
  log "loaded $* into $(nodes | wc -l) nodes in $(($(ms) - t0)) ms"
}

node_pids() {
  local n=$1
  {
    ip netns pids "$PREFIX-$n" 2>/dev/null || true
    cat /sys/fs/cgroup/pids/"$PREFIX"/"$n"/cgroup.procs /sys/fs/cgroup/pids/"$PREFIX"/"$n"/*/cgroup.procs 2>/dev/null || true
  } | sort -u
}

cmd_kill() {
  local n=${1:?usage: $0 kill NODE}
  local pids
  pids=$(node_pids "$n")
  [[ -n $pids ]] && kill -KILL $pids 2>/dev/null || true
  rm -f "$RUN/$n.pid"
  log "node $n killed (pids: $(echo $pids | tr '\n' ' '))"
}

cmd_revive() {
  local n=${1:?usage: $0 revive NODE}
  start_daemon "$n"
}

node_down() {
  local n=$1 t0 pid
  if [[ -S $(node_sock "$n") ]] && ndocker "$n" version >/dev/null 2>&1; then
    # containers first, so the daemon's shutdown is quick and nothing is orphaned
    local ids
    ids=$(ndocker "$n" ps -aq 2>/dev/null || true)
    [[ -n $ids ]] && ndocker "$n" rm -f $ids >/dev/null 2>&1 || true
  fi
  pid=$(cat "$RUN/$n.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null; then
    t0=$(ms)
    while kill -0 "$pid" 2>/dev/null && (($(ms) - t0 < 20000)); do sleep 0.2; done
  fi
  local rest
  rest=$(node_pids "$n")
  [[ -n $rest ]] && kill -KILL $rest 2>/dev/null || true
  sleep 0.2
  local c
  for c in /sys/fs/cgroup/*/"$PREFIX"/"$n"; do
    [[ -d $c ]] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  ip netns del "$PREFIX-$n" 2>/dev/null || true
  rm -rf "/etc/netns/$PREFIX-$n"
  ip -n "$HUB" link del "$n" 2>/dev/null || true
  rm -rf "${EXEC:?}/$n" "$RUN/$n.sock" "$RUN/$n.pid" "$RUN/$n.json"
  [[ ${IAC_SWARM_KEEP_DATA:-0} == 1 ]] || rm -rf "${DATA:?}/$n"
}

cmd_down() {
  local t0 n
  t0=$(ms)
  local all
  all=$( (
    nodes
    ip netns list | awk '{print $1}' | sed -n "s/^$PREFIX-\(n[0-9]*\)$/\1/p"
  ) | sort -u)
  for n in $all; do node_down "$n" & done
  wait
  registry_down
  ip link del "$HOSTIF" 2>/dev/null || true
  ip netns del "$HUB" 2>/dev/null || true
  for n in /sys/fs/cgroup/*/"$PREFIX"; do [[ -d $n ]] && rmdir "$n" 2>/dev/null || true; done
  rm -f "$RUN/nodes" "$RUN"/images.*.tar
  rmdir "$EXEC" 2>/dev/null || true
  log "down in $(($(ms) - t0)) ms"
}

cmd_registry() {
  command -v docker-registry >/dev/null 2>&1 || {
    [[ $(id -u) == 0 ]] || die "docker-registry is missing (apt-get install docker-registry)"
    log "installing Debian docker-registry"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
  }
  [[ -f $RUN/registry.pid ]] && kill -0 "$(cat "$RUN/registry.pid")" 2>/dev/null && return 0
  mkdir -p "$RUN" "$DATA/registry"
  printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
    "$DATA/registry" "$(registry_addr)" >"$RUN/registry.yml"
  docker-registry serve "$RUN/registry.yml" >>"$RUN/registry.log" 2>&1 &
  echo $! >"$RUN/registry.pid"
  local t0
  t0=$(ms)
  until curl -fsS "http://$(registry_addr)/v2/" >/dev/null 2>&1; do
    (($(ms) - t0 < 20000)) || die "registry did not answer at $(registry_addr) within 20 s (see $RUN/registry.log)"
    sleep 0.2
  done
  log "registry up at $(registry_addr) in $(($(ms) - t0)) ms"
}

registry_down() {
  local pid
  pid=$(cat "$RUN/registry.pid" 2>/dev/null || true)
  [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null || true
  rm -f "$RUN/registry.pid" "$RUN/registry.yml"
  [[ ${IAC_SWARM_KEEP_DATA:-0} == 1 ]] || rm -rf "${DATA:?}/registry"
}

cmd_status() {
  ndocker n1 node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}'
}

cmd_env() {
  echo "DOCKER_HOST=$(node_host n1)"
  echo "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1"
  local n
  for n in $(nodes); do echo "IAC_SWARM_NODE_${n^^}=$(node_host "$n") $(node_ip "$n")"; done
}

case ${1:-} in
up) shift && cmd_up "$@" ;;
load) shift && cmd_load "$@" ;;
kill) shift && cmd_kill "$@" ;;
revive) shift && cmd_revive "$@" ;;
down) cmd_down ;;
status) cmd_status ;;
registry) cmd_registry ;;
env) cmd_env ;;
*) die "usage: $0 up [N] | load IMAGE.. | kill NODE | revive NODE | registry | status | env | down" ;;
esac
