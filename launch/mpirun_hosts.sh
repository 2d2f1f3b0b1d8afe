#!/usr/bin/env bash
# Multi-host `mpirun` for Loom: a hostfile, ranks per node, the networks, and the environment
# every rank needs, turned into one Open MPI command line.
#
#   launch/mpirun_hosts.sh --hostfile hosts --ranks-per-node 8 --data-if ib0 --oob-if eth0 \
#       --threads 6 -- bazel-bin/launch/train --config=CFG --run_dir=/shared/runs/x
#
# Options (then `--` and the program with its arguments):
#   --hostfile FILE      Open MPI hostfile, one host per line: "name-or-address [slots=N]"
#   --ranks-per-node N   ranks on every host (--map-by ppr:N:node); default: each host's slots
#   --np N               total ranks (default: ranks-per-node x hosts, or the sum of the slots)
#   --data-if SPEC       the network ranks talk over: interface names (eth1) or IPv4 subnets
#                        (10.78.0.0/24), comma-separated. Sets Open MPI's btl_tcp_if_include,
#                        LOOM_NET_IF (Loom's liveness probe) and, for names, NCCL_SOCKET_IFNAME
#                        (unless already set)
#   --oob-if SPEC        the network mpirun reaches its daemons over (oob_tcp_if_include);
#                        default: --data-if
#   --threads N          OMP_NUM_THREADS for every rank (cores per host / ranks per host)
#   --env NAME[=VALUE]   pass NAME to every rank (repeatable). Passed whenever set: PATH,
#                        LD_LIBRARY_PATH, OMP_NUM_THREADS, CUDA_VISIBLE_DEVICES and every LOOM_*,
#                        NCCL_*, MALLOC_* variable
#   --host-timeout S     a host whose daemon is silent this long is declared lost and mpirun ends
#                        the job (Open MPI daemon TCP keepalive; default 30). Keep it below the
#                        ranks' parallel.collective_timeout_s (default 300) so Open MPI, which can
#                        also end the daemons, acts first when a whole host vanishes
#   --tcp-only           no shared memory between the ranks of one host (btl tcp,self)
#   --bind-to WHAT       process binding (default none: Loom's ranks run their own OpenMP threads,
#                        and Open MPI's default for 2 ranks would pin each to one core)
#   --rsh-agent CMD      how mpirun starts its daemon on a host (default Open MPI's: ssh);
#                        launch/netns_rsh.sh for the namespace hosts of launch/netns_hosts.sh
#   --mpirun-arg ARG     one more mpirun argument (repeatable), e.g. --mpirun-arg=--prefix=/opt/ompi
#   --dry-run            print the command and exit
#
# The command is printed to stderr before it runs; the exit status is mpirun's. Every rank must
# see the program and the run directory at the same path (a shared filesystem).
set -euo pipefail

die() { echo "mpirun_hosts: $*" >&2; exit 2; }

hostfile="" rpn="" np="" data_if="" oob_if="" threads="" host_timeout=30 tcp_only=0
bind_to=none rsh_agent="" dry_run=0
envs=() extra=()
while [[ $# -gt 0 ]]; do
  arg=$1
  case $arg in
    --) shift; break ;;
    --*=*) key=${arg%%=*}; val=${arg#*=}; shift ;;
    --tcp-only|--dry-run) key=$arg; val=""; shift ;;
    --*) key=$arg; [[ $# -ge 2 ]] || die "$arg needs a value"; val=$2; shift 2 ;;
    *) break ;;
  esac
  case $key in
    --hostfile) hostfile=$val ;;
    --ranks-per-node) rpn=$val ;;
    --np) np=$val ;;
    --data-if) data_if=$val ;;
    --oob-if) oob_if=$val ;;
    --threads) threads=$val ;;
    --env) envs+=("$val") ;;
    --host-timeout) host_timeout=$val ;;
    --tcp-only) tcp_only=1 ;;
    --bind-to) bind_to=$val ;;
    --rsh-agent) rsh_agent=$val ;;
    --mpirun-arg) extra+=("$val") ;;
    --dry-run) dry_run=1 ;;
    *) die "unknown option $key (see the header of $0)" ;;
  esac
done
[[ $# -ge 1 ]] || die "no program given (… -- PROGRAM ARGS)"
[[ -n $hostfile ]] || die "--hostfile is required"
[[ -f $hostfile ]] || die "hostfile $hostfile not found"
for v in rpn np threads; do
  [[ -z ${!v} || ${!v} =~ ^[1-9][0-9]*$ ]] ||
    die "--${v/rpn/ranks-per-node} must be a positive integer"
done
[[ $host_timeout =~ ^[1-9][0-9]*$ ]] || die "--host-timeout must be a positive number of seconds"

# Hosts and slots from the hostfile.
hosts=0 slots_total=0 missing_slots=""
while read -r name rest; do
  [[ -z $name || $name == \#* ]] && continue
  hosts=$((hosts + 1))
  if [[ $rest =~ slots=([0-9]+) ]]; then
    slots_total=$((slots_total + BASH_REMATCH[1]))
  else
    missing_slots=$name
  fi
done <"$hostfile"
(( hosts > 0 )) || die "$hostfile lists no host"

cmd=(mpirun)
[[ $(id -u) == 0 ]] && cmd+=(--allow-run-as-root)
cmd+=(--hostfile "$hostfile")
if [[ -n $rpn ]]; then
  cmd+=(--map-by "ppr:$rpn:node" --oversubscribe)
  np=${np:-$((rpn * hosts))}
else
  [[ -z $missing_slots || -n $np ]] ||
    die "host $missing_slots has no slots=N in $hostfile: give slots per host," \
      "--ranks-per-node or --np"
  np=${np:-$slots_total}
fi
cmd+=(-np "$np" --bind-to "$bind_to")

# Networks.
if [[ $tcp_only == 1 ]]; then
  cmd+=(--mca btl tcp,self)
else
  cmd+=(--mca btl self,vader,tcp)
fi
[[ -z $oob_if ]] && oob_if=$data_if
[[ -n $data_if ]] && cmd+=(--mca btl_tcp_if_include "$data_if")
[[ -n $oob_if ]] && cmd+=(--mca oob_tcp_if_include "$oob_if")
if [[ -n $data_if ]]; then
  export LOOM_NET_IF=$data_if
  if [[ $data_if != */* && -z ${NCCL_SOCKET_IFNAME:-} ]]; then
    export NCCL_SOCKET_IFNAME=$data_if
  fi
fi
# Lost hosts: keepalive probes on the daemons' connections (idle during training), declared dead
# after about host_timeout seconds of silence.
ka_time=$(( host_timeout / 2 > 0 ? host_timeout / 2 : 1 ))
ka_intvl=$(( host_timeout / 6 > 0 ? host_timeout / 6 : 1 ))
cmd+=(--mca oob_tcp_keepalive_time "$ka_time" --mca oob_tcp_keepalive_intvl "$ka_intvl"
      --mca oob_tcp_keepalive_probes 3)
[[ -n $rsh_agent ]] && cmd+=(--mca plm_rsh_agent "$rsh_agent")

# Environment for every rank (remote ranks get only what -x names).
[[ -n $threads ]] && export OMP_NUM_THREADS=$threads
names=()
for e in "${envs[@]}"; do
  if [[ $e == *=* ]]; then
    export "${e%%=*}=${e#*=}"
    names+=("${e%%=*}")
  else
    [[ -n ${!e+x} ]] || die "--env $e: $e is not set here"
    names+=("$e")
  fi
done
for n in PATH LD_LIBRARY_PATH OMP_NUM_THREADS CUDA_VISIBLE_DEVICES; do
  [[ -n ${!n+x} ]] && names+=("$n")
done
while read -r n; do names+=("$n"); done < <(compgen -e | grep -E '^(LOOM_|NCCL_|MALLOC_)' || true)
declare -A seen=()
for n in "${names[@]}"; do
  [[ -n ${seen[$n]+x} ]] && continue
  seen[$n]=1
  cmd+=(-x "$n")
done

cmd+=("${extra[@]}" "$@")
printf -v shown " %q" "${cmd[@]}"
echo "mpirun_hosts:${shown}" >&2
[[ $dry_run == 1 ]] && exit 0
exec "${cmd[@]}"
