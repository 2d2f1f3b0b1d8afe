#!/usr/bin/env bash
# Open MPI's remote-shell agent for the namespace hosts of launch/netns_hosts.sh, in place of ssh:
#
#   mpirun --mca plm_rsh_agent "/abs/path/launch/netns_rsh.sh --map DIR/hosts.map" ...
#   (launch/mpirun_hosts.sh --rsh-agent "...": the same)
#
# Open MPI calls it as `netns_rsh.sh [--map FILE] HOST COMMAND...` to start its daemon (orted) on
# HOST. HOST is looked up in the map (--map, else $LOOM_NETNS_MAP; lines "host namespace
# hostname"), and COMMAND runs as ssh would run it: through `sh -c`, inside the host's network
# namespace, under the host's name (a private UTS namespace), with a fresh login-like environment
# (PATH, HOME, USER, LOGNAME, LANG only), so variables reach the ranks only if mpirun passes them
# (`-x`), as on a real cluster. The exit status is COMMAND's.
set -euo pipefail

map=${LOOM_NETNS_MAP:-}
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in
    --map) map=$2; shift 2 ;;
    # ssh options Open MPI may pass (plm_rsh_args): nothing to do here.
    -[bcDEeFIiJLlmOopQRSWw]) shift 2 ;;
    *) shift ;;
  esac
done
die() { echo "netns_rsh: $*" >&2; exit 255; }  # 255: what ssh returns when it cannot connect
[[ $# -ge 2 ]] || die "usage: netns_rsh.sh [--map FILE] HOST COMMAND..."
[[ -n $map && -f $map ]] || die "no host map (--map FILE or LOOM_NETNS_MAP)"
host=$1
shift
read -r ns name < <(awk -v h="$host" '$1 == h { print $2, $3; exit }' "$map") || true
[[ -n ${ns:-} ]] || die "host \"$host\" is not in $map"
exec ip netns exec "$ns" unshare --uts \
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}" \
  USER="$(id -un)" LOGNAME="$(id -un)" LANG=C.UTF-8 \
  sh -c 'hostname "$0" && exec sh -c "$1"' "$name" "$*"
