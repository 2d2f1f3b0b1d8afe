#!/usr/bin/env bash
# Across hosts for real: `train` on 2 hosts x 2 ranks, each host a network namespace with its own
# hostname and addresses (launch/netns_hosts.sh), started by launch/mpirun_hosts.sh through the
# namespace launch agent (launch/netns_rsh.sh), ranks talking TCP over veth pairs and a bridge:
#  - the wrapper's mpirun command (--dry-run): mapping, networks, keepalive, -x, errors;
#  - placement and environment: every rank sees its rank, its host's name, the local rank Open
#    MPI gives it on that host (0 and 1 on each), OMP_NUM_THREADS, LOOM_NET_IF,
#    NCCL_SOCKET_IFNAME and a variable passed with --env, and nothing else of the caller's
#    environment; `train` prints the layout it gathered;
#  - the same training as one process (float64, same global batch): losses, grad norms, val
#    losses and final weights to 1e-10 relative, for all-reduce and for ZeRO-1, and the gradient
#    traffic really crossed the data network between the hosts (bridge port counters);
#  - the harness: a host set whose owner process died is removed by `gc`; `destroy` leaves no
#    namespace and no process behind.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
TRAIN="$RUNFILES/launch/train"
TOKENIZE="$RUNFILES/tools/tokenize"
CONFIG="$RUNFILES/launch/configs/lm/tiny.textproto"
# Fresh even if Bazel reuses TEST_TMPDIR between runs (old run dirs would be resumed).
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$RUNFILES/tests/netns_common.sh"
echo "hosts: $(cat "$WORK/netns_create.log")"

# 0. The wrapper's command line (--dry-run): mapping, networks, keepalive, environment, errors.
printf '# two nodes\na slots=4\nb slots=4\n' >"$WORK/hosts.ab"
dry() { env -u NCCL_SOCKET_IFNAME "$MPIRUN_HOSTS" --dry-run --hostfile "$WORK/hosts.ab" "$@" 2>&1; }
out=$(dry --ranks-per-node 2 --data-if 10.78.0.0/24 --oob-if eth0 --host-timeout 12 -- prog)
for want in "--map-by ppr:2:node" "-np 4" "--bind-to none" "--mca btl self\\,vader\\,tcp" \
    "--mca btl_tcp_if_include 10.78.0.0/24" "--mca oob_tcp_if_include eth0" \
    "--mca oob_tcp_keepalive_time 6 --mca oob_tcp_keepalive_intvl 2 --mca oob_tcp_keepalive_probes 3" \
    "-x LOOM_NET_IF" " prog"; do
  grep -qF -- "$want" <<<"$out" || fail "dry run lacks \"$want\": $out"
done
grep -q "NCCL_SOCKET_IFNAME" <<<"$out" && fail "NCCL_SOCKET_IFNAME set from a subnet: $out"
out=$(dry --data-if eth1 --tcp-only --np 3 --env FOO=1 --mpirun-arg=--tag-output -- prog)
for want in "-np 3" "--mca btl tcp\\,self" "-x NCCL_SOCKET_IFNAME" "-x FOO" "--tag-output prog"; do
  grep -qF -- "$want" <<<"$out" || fail "dry run lacks \"$want\": $out"
done
printf 'a\nb slots=2\n' >"$WORK/hosts.noslots"
out=$("$MPIRUN_HOSTS" --dry-run --hostfile "$WORK/hosts.noslots" -- prog 2>&1) && fail "missing slots accepted"
grep -q "host a has no slots=N" <<<"$out" || fail "missing slots: $out"
out=$("$MPIRUN_HOSTS" --dry-run --hostfile "$WORK/hosts.ab" --bogus 1 -- prog 2>&1) && fail "bad option accepted"
grep -q "unknown option --bogus" <<<"$out" || fail "bad option: $out"
echo "wrapper: mapping, networks, keepalive, environment and errors as specified"

# 1. Placement and environment, from the ranks themselves.
export LOOM_TEST_FROM_CALLER=caller SOME_OTHER_VAR=leak
mh --env MH_EXTRA=extra -- /bin/sh -c 'echo "rank=$OMPI_COMM_WORLD_RANK local=$OMPI_COMM_WORLD_LOCAL_RANK host=$(hostname) addr=$(ip -4 -o addr show eth1 | awk "{print \$4}") omp=$OMP_NUM_THREADS netif=$LOOM_NET_IF nccl=$NCCL_SOCKET_IFNAME extra=$MH_EXTRA caller=$LOOM_TEST_FROM_CALLER other=${SOME_OTHER_VAR:-unset}"' \
  >"$WORK/env.log" 2>&1 || { cat "$WORK/env.log"; fail "ranks did not start on the hosts"; }
sort "$WORK/env.log" | grep '^rank=' >"$WORK/env.sorted" || true
cat >"$WORK/env.expected" <<EOF
rank=0 local=0 host=node1 addr=10.78.0.1/24 omp=1 netif=eth1 nccl=eth1 extra=extra caller=caller other=unset
rank=1 local=1 host=node1 addr=10.78.0.1/24 omp=1 netif=eth1 nccl=eth1 extra=extra caller=caller other=unset
rank=2 local=0 host=node2 addr=10.78.0.2/24 omp=1 netif=eth1 nccl=eth1 extra=extra caller=caller other=unset
rank=3 local=1 host=node2 addr=10.78.0.2/24 omp=1 netif=eth1 nccl=eth1 extra=extra caller=caller other=unset
EOF
diff "$WORK/env.expected" "$WORK/env.sorted" || { cat "$WORK/env.log"; fail "placement or environment of the ranks"; }
echo "placement and environment: 4 ranks, local ranks 0,1 on node1 and on node2, environment as passed"

# 2. Training: 1 process against 2 hosts x 2 ranks.
"$TOKENIZE" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >"$WORK/tokenize.log" 2>&1 || { cat "$WORK/tokenize.log"; fail tokenize; }
common=(--config="$CONFIG" --set=data.tokenizer=byte
  --set="data.train_shards=$WORK/shards/train_*.bin" --set="data.val_shards=$WORK/shards/val_*.bin"
  --set=model.d_model=32 --set=model.num_layers=2 --set=model.mixer.num_heads=2
  --set=train.seq_len=32 --set=train.global_batch_size=8 --set=train.micro_batch_size=2
  --set=train.max_steps=6 --set=train.log_every=1 --set=train.eval_every=3
  --set=train.eval_batches=4 --set=train.eval_batch_size=2 --set=optimizer.lr=3e-3
  --set=train.num_threads=1 --set=logging.progress=plain --set=parallel.bucket_mb=0.05
  --set=model.dtype=float64 --set=parallel.collective_timeout_s=120)

"$TRAIN" "${common[@]}" --run_dir="$WORK/r1" >"$WORK/r1.log" 2>&1 || { cat "$WORK/r1.log"; fail "1-process run"; }

port_bytes() {  # total rx+tx bytes of the switch ports of one network (c = ctl, d = data)
  local sum=0 i b
  for i in 1 2; do
    for b in rx_bytes tx_bytes; do
      sum=$((sum + $(ip netns exec "$NETNS_PREFIX-sw" cat "/sys/class/net/$1$i/statistics/$b")))
    done
  done
  echo $sum
}
data0=$(port_bytes d)
mh -- "$TRAIN" "${common[@]}" --set=parallel.overlap=on --run_dir="$WORK/r4" >"$WORK/r4.log" 2>&1 \
  || { cat "$WORK/r4.log"; fail "2 hosts x 2 ranks"; }
data_bytes=$(( $(port_bytes d) - data0 ))
mh -- "$TRAIN" "${common[@]}" --set=optimizer.zero_stage=1 --run_dir="$WORK/r4z" >"$WORK/r4z.log" 2>&1 \
  || { cat "$WORK/r4z.log"; fail "2 hosts x 2 ranks, ZeRO-1"; }
layout="loom: 4 ranks on 2 hosts: node1 = ranks 0-1 (local 0,1), node2 = ranks 2-3 (local 0,1)"
grep -qxF "$layout" "$WORK/r4.log" || { cat "$WORK/r4.log"; fail "train did not print the host layout"; }
grep -q "x 4 ranks (mpi, ZeRO-1)" "$WORK/r4z.log" || { cat "$WORK/r4z.log"; fail "ZeRO-1 banner"; }
echo "$layout"
# 33.7k float64 parameters: every step all-reduces 270 KB of gradients, half of which crosses
# between the hosts in each direction; 6 steps plus the evaluations and the start-up broadcast.
echo "data network traffic during the 2x2 run: $data_bytes bytes"
(( data_bytes > 2000000 )) || fail "only $data_bytes bytes crossed the data network"

python3 "$RUNFILES/tests/close_runs.py" "$WORK" r4:r1:1e-10 r4z:r1:1e-10 ||
  fail "2 hosts x 2 ranks differ from 1 process"

# 3. The harness: `gc` removes a set whose owner process died, with the processes inside it;
#    `destroy` leaves no namespace behind.
sleep 600 &
owner=$!
"$NETNS" create "$WORK/stale" --hosts 1 --owner $owner >/dev/null 2>&1 || fail "second host set"
stale=$(sed -n 's/^NETNS_PREFIX=//p' "$WORK/stale/netns.env")
inside=$( ("$NETNS" exec "$WORK/stale" node1 -- sleep 600 >/dev/null 2>&1 & echo $!) )
sleep 0.5
[[ -n $("$NETNS" pids "$WORK/stale") ]] || fail "no process inside the stale set"
kill $owner
wait $owner 2>/dev/null || true
"$NETNS" gc 2>"$WORK/gc.log"
grep -q "removing $stale" "$WORK/gc.log" || { cat "$WORK/gc.log"; fail "gc did not remove $stale"; }
ip netns list | grep -q "^$stale-" && fail "gc left namespaces of $stale"
kill -0 $inside 2>/dev/null && fail "gc left a process of $stale running"
"$NETNS" destroy "$HOSTS"
ip netns list | grep -q "^$NETNS_PREFIX-" && fail "destroy left namespaces of $NETNS_PREFIX"
echo "harness: gc removed a set whose owner died, destroy removed everything"
echo PASS
