#!/usr/bin/env bash
# Simulated cluster on one Linux machine: N "hosts" made of network namespaces, each with its own
# name and addresses on two networks, so that `mpirun` runs Loom across hosts over real TCP
# (veth pairs and bridges) instead of shared memory. Needs root and iproute2 (`ip`), `unshare`.
#
#   launch/netns_hosts.sh create DIR [--hosts N] [--slots S] [--owner PID]
#                                                               # N hosts (default 2), S slots each
#   launch/netns_hosts.sh exec DIR head -- CMD...               # run CMD where mpirun runs
#   launch/netns_hosts.sh exec DIR node2 -- CMD...              # ... or on a host
#   launch/netns_hosts.sh link DIR node2 data|ctl|all down|up   # cut / restore a host's link
#   launch/netns_hosts.sh recreate DIR node2                    # kill it, delete it, make it again
#   launch/netns_hosts.sh pids DIR [head|nodeI]                 # processes inside the namespaces
#   launch/netns_hosts.sh destroy DIR                           # kill everything inside, delete all
#   launch/netns_hosts.sh gc                                    # destroy sets whose owner died
#
# Topology (everything lives in namespaces; the machine's own network is not touched):
#
#   <p>-sw     the "switch": bridges `ctl` and `data`, one veth port per host (c<i>, d<i>, ch)
#   <p>-head   where mpirun runs: eth0 = 10.77.0.254 on ctl; hostname "head"
#   <p>-node<i> a host: eth0 = 10.77.0.<i> on ctl (launcher, Open MPI daemons), eth1 = 10.78.0.<i>
#               on data (rank-to-rank traffic); hostname "node<i>"
#
# Like a cluster's management and high-speed networks: cutting `data` leaves the launcher
# connected (only the ranks notice), cutting `all` makes the host vanish. Hostnames are set per
# process by entering a private UTS namespace (`exec` and launch/netns_rsh.sh do it), so each
# host has its own name while the filesystem stays shared (like NFS on a cluster).
#
# DIR receives: hostfile (Open MPI format: "10.77.0.<i> slots=S"), hosts.map (for
# launch/netns_rsh.sh: "address namespace hostname" and "hostname namespace hostname"), and
# netns.env (the set's names). The namespace prefix <p> is "loom<owner>x<random>", unique per
# run. With --owner PID (tests pass their own $$), `create` and `gc` destroy the set once that
# process no longer exists (a run killed before its cleanup); without it (owner 0) the set stays
# until `destroy`. `destroy` kills every process inside the namespaces before deleting them: call
# it from an EXIT trap.
set -eEuo pipefail

CTL=10.77.0
DATA=10.78.0
die() { echo "netns_hosts: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -eEuo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

[[ $(id -u) == 0 ]] || die "needs root (ip netns)"
command -v ip >/dev/null || die "iproute2's ip is not installed"

kill_ns() {  # kill_ns NS: every process inside, until none is left
  local ns=$1 pids
  for _ in $(seq 50); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -z $pids ]] && return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    sleep 0.1
  done
  echo "netns_hosts: warning: processes still in $ns: $(ip netns pids "$ns" | xargs)" >&2
}

delete_ns() {  # delete_ns NS
  ip netns list | awk '{print $1}' | grep -qx "$1" || return 0
  kill_ns "$1"
  ip netns del "$1" 2>/dev/null || true
}

destroy_prefix() {  # destroy_prefix P: hosts first, then head and switch
  local p=$1 ns
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$p-(node[0-9]+|head|sw)$" | sort -r); do
    delete_ns "$ns"
  done
}

gc() {  # sets whose owner process has exited
  local p owner
  for p in $(ip netns list | awk '{print $1}' | sed -n 's/^\(loom[0-9]*x[0-9a-f]*\)-sw$/\1/p'); do
    owner=${p#loom}
    owner=${owner%%x*}
    if [[ $owner != 0 && ! -d /proc/$owner ]]; then
      echo "netns_hosts: removing $p (owner $owner is gone)" >&2
      destroy_prefix "$p"
    fi
  done
}

load() {  # load DIR: the set's names
  [[ -f $1/netns.env ]] || die "$1/netns.env not found (create the hosts first)"
  # shellcheck disable=SC1091
  source "$1/netns.env"
}

make_node() {  # make_node PREFIX I
  local p=$1 i=$2 ns="$1-node$2" x
  x=$(printf '%02x' "$2")
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  # Fixed MAC addresses, like a machine's NICs: a recreated host keeps them, so its peers' ARP
  # caches stay right.
  ip -n "$p-sw" link add "c$i" type veth peer name eth0 address "02:4c:77:00:00:$x" netns "$ns"
  ip -n "$p-sw" link add "d$i" type veth peer name eth1 address "02:4c:78:00:00:$x" netns "$ns"
  ip -n "$p-sw" link set "c$i" master ctl up
  ip -n "$p-sw" link set "d$i" master data up
  ip -n "$ns" addr add "$CTL.$i/24" dev eth0
  ip -n "$ns" addr add "$DATA.$i/24" dev eth1
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set eth1 up
}

ns_of() {  # ns_of NAME: head or node<i> -> namespace
  case $1 in
    head) echo "$NETNS_PREFIX-head" ;;
    node[0-9]*)
      local i=${1#node}
      (( i >= 1 && i <= NETNS_HOSTS )) || die "no host $1 (hosts: node1..node$NETNS_HOSTS)"
      echo "$NETNS_PREFIX-$1" ;;
    *) die "unknown host \"$1\" (head or node1..node$NETNS_HOSTS)" ;;
  esac
}

cmd=${1:-}
[[ -n $cmd ]] || usage
shift
case $cmd in
  create)
    [[ $# -ge 1 ]] || usage
    dir=$1; shift
    hosts=2 slots=1 owner=0
    while [[ $# -gt 0 ]]; do
      case $1 in
        --hosts) hosts=$2; shift 2 ;;
        --slots) slots=$2; shift 2 ;;
        --owner) owner=$2; shift 2 ;;
        *) die "create: unknown option $1" ;;
      esac
    done
    [[ $hosts =~ ^[0-9]+$ ]] && (( hosts >= 1 && hosts <= 250 )) || die "--hosts must be 1..250"
    [[ $slots =~ ^[0-9]+$ ]] && (( slots >= 1 )) || die "--slots must be >= 1"
    [[ $owner =~ ^[0-9]+$ ]] || die "--owner must be a process id"
    [[ $owner == 0 || -d /proc/$owner ]] || die "owner process $owner does not exist"
    gc
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    while :; do  # a prefix no existing namespace uses
      p="loom${owner}x$(printf '%04x%04x' $RANDOM $RANDOM)"
      ip netns list | awk '{print $1}' | grep -q "^$p-" || break
    done
    # A failure half-way leaves nothing behind.
    trap 'destroy_prefix "$p"' ERR
    ip netns add "$p-sw"
    ip -n "$p-sw" link set lo up
    ip -n "$p-sw" link add name ctl type bridge
    ip -n "$p-sw" link add name data type bridge
    ip -n "$p-sw" link set ctl up
    ip -n "$p-sw" link set data up
    ip netns add "$p-head"
    ip -n "$p-head" link set lo up
    ip -n "$p-sw" link add ch type veth peer name eth0 address 02:4c:77:00:00:fe netns "$p-head"
    ip -n "$p-sw" link set ch master ctl up
    ip -n "$p-head" addr add "$CTL.254/24" dev eth0
    ip -n "$p-head" link set eth0 up
    : >"$dir/hostfile"
    : >"$dir/hosts.map"
    for i in $(seq "$hosts"); do
      make_node "$p" "$i"
      echo "$CTL.$i slots=$slots" >>"$dir/hostfile"
      printf '%s %s %s\n%s %s %s\n' "$CTL.$i" "$p-node$i" "node$i" "node$i" "$p-node$i" "node$i" \
        >>"$dir/hosts.map"
    done
    printf 'NETNS_PREFIX=%s\nNETNS_HOSTS=%s\nNETNS_CTL=%s\nNETNS_DATA=%s\n' \
      "$p" "$hosts" "$CTL" "$DATA" >"$dir/netns.env"
    trap - ERR
    echo "netns_hosts: $hosts hosts ($p-node1..$hosts: ctl $CTL.i/24 on eth0, data" \
      "$DATA.i/24 on eth1), mpirun in $p-head ($CTL.254); $dir/hostfile"
    ;;
  destroy)
    [[ $# -eq 1 ]] || usage
    [[ -f $1/netns.env ]] || exit 0  # nothing was created
    load "$1"
    destroy_prefix "$NETNS_PREFIX"
    ;;
  recreate)
    [[ $# -eq 2 ]] || usage
    load "$1"
    ns=$(ns_of "$2")
    [[ $2 == node* ]] || die "recreate: only hosts (node<i>)"
    delete_ns "$ns"
    make_node "$NETNS_PREFIX" "${2#node}"
    ;;
  link)
    [[ $# -eq 4 ]] || usage
    load "$1"
    ns_of "$2" >/dev/null
    [[ $2 == node* ]] || die "link: only hosts (node<i>)"
    i=${2#node}
    case $3 in
      ctl) ports=("c$i") ;;
      data) ports=("d$i") ;;
      all) ports=("c$i" "d$i") ;;
      *) die "link: network must be ctl, data or all" ;;
    esac
    [[ $4 == up || $4 == down ]] || die "link: state must be up or down"
    for port in "${ports[@]}"; do ip -n "$NETNS_PREFIX-sw" link set "$port" "$4"; done
    ;;
  exec)
    [[ $# -ge 4 && $3 == -- ]] || usage
    load "$1"
    ns=$(ns_of "$2")
    name=$2
    shift 3
    exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$name" "$@"
    ;;
  pids)
    [[ $# -ge 1 ]] || usage
    load "$1"
    if [[ $# -eq 2 ]]; then
      ns=$(ns_of "$2")
      ip netns pids "$ns"
    else
      for ns in $(ip netns list | awk '{print $1}' |
                  grep -E "^$NETNS_PREFIX-(node[0-9]+|head|sw)$"); do
        ip netns pids "$ns"
      done
    fi
    ;;
  gc) gc ;;
  *) usage ;;
esac
