# Sourced by the multi-host tests (after RUNFILES and WORK are set): 2 namespace hosts
# (launch/netns_hosts.sh, 2 slots each) that are destroyed, with every process inside them, when
# the test exits for any reason, and `mh ...` = launch/mpirun_hosts.sh run where mpirun runs, over
# those hosts: 2 ranks per host, rank traffic on eth1 (the data network), the launcher on eth0.
#
#   mh [wrapper options] -- PROGRAM ARGS       (blocks; the exit status is mpirun's)
#   mh_bg OUT [wrapper options] -- PROGRAM ARGS (background; MH_PID is mpirun's pid, output in OUT)
#   netns_quiet                                  true when no process is left in the namespaces
#   netns_kill_all                               SIGKILL every process in them until none is left
[[ $(id -u) == 0 ]] || { echo "FAIL: network namespaces need root (CI runs as root)" >&2; exit 1; }
command -v ip >/dev/null && command -v unshare >/dev/null \
  || { echo "FAIL: ip (iproute2) and unshare are needed; launch/setup.sh installs them" >&2; exit 1; }
# Bazel's per-test files must not be touched by the ranks (as in mpi_common.sh).
unset TEST_PREMATURE_EXIT_FILE XML_OUTPUT_FILE
NETNS="$RUNFILES/launch/netns_hosts.sh"
MPIRUN_HOSTS="$RUNFILES/launch/mpirun_hosts.sh"
RSH_AGENT="$RUNFILES/launch/netns_rsh.sh"
HOSTS="$WORK/hosts"

netns_cleanup() {
  local rc=$?
  "$NETNS" destroy "$HOSTS" || true
  exit $rc
}
trap netns_cleanup EXIT
# Bazel stops a test with SIGTERM: turn it into an exit so that the EXIT trap runs. Long commands
# run in the background with `wait`, which a signal interrupts.
trap 'exit 143' TERM INT HUP

"$NETNS" create "$HOSTS" --hosts 2 --slots 2 --owner $$ >"$WORK/netns_create.log" 2>&1 \
  || { cat "$WORK/netns_create.log" >&2; echo "FAIL: could not create the namespace hosts" >&2; exit 1; }
source "$HOSTS/netns.env"

mh_cmd() {
  MH=("$NETNS" exec "$HOSTS" head -- "$MPIRUN_HOSTS" --hostfile "$HOSTS/hostfile"
      --ranks-per-node 2 --data-if eth1 --oob-if eth0 --threads 1
      --rsh-agent "$RSH_AGENT --map $HOSTS/hosts.map" "$@")
}
mh() {
  mh_cmd "$@"
  timeout 600 "${MH[@]}" &
  wait $!
}
mh_bg() {
  local out=$1
  shift
  mh_cmd "$@"
  # Every step of `netns_hosts.sh exec` execs the next (ip, unshare, sh, the wrapper, mpirun),
  # so $! is mpirun itself.
  "${MH[@]}" >"$out" 2>&1 &
  MH_PID=$!
}
netns_quiet() { [[ -z $("$NETNS" pids "$HOSTS") ]]; }
# SIGKILL to every process on every host (the head included), until none is left (killed
# processes take a moment to disappear).
netns_kill_all() {
  for _ in $(seq 50); do
    netns_quiet && return 0
    "$NETNS" pids "$HOSTS" | xargs -r kill -9 2>/dev/null || true
    sleep 0.1
  done
  netns_quiet
}
