#!/usr/bin/env bash
# Network faults in the middle of training, 2 namespace hosts x 2 ranks (launch/mpirun_hosts.sh;
# rank traffic on the data network eth1, Open MPI's launcher on eth0), after the checkpoint of
# step 8 of 30:
#  A. node2's data link goes down (`ip link set d2 down` on the switch): MPI's TCP connections
#     between the hosts stall without an error. Loom's collective watchdog
#     (parallel.collective_timeout_s=10) ends every rank, and each names the peers it lost:
#       rank 0/1 (node1): "... lost contact with ranks 2-3 on node2 (10.78.0.2): no answer"
#       rank 2/3 (node2): "... lost contact with ranks 0-1 on node1 (10.78.0.1): no answer"
#     mpirun exits non-zero, and no process is left on any host, within 40 s of the cut;
#  B. node2 vanishes (both links down): Open MPI's daemon keepalive (--host-timeout 6) notices
#     the lost host before the collective timeout (60 s here) and ends the job, naming the node
#     ("ORTE has lost communication with a remote daemon ... on node 10.77.0.2"); no process is
#     left on either host within 30 s.
# After each fault the newest complete checkpoint passes `ckpt verify`, and once the link is back
# the same command resumes from it and ends bitwise equal to an uninterrupted run.
#  C. Not the network: rank 3 is frozen (SIGSTOP). The others' watchdogs name it as a process
#     that does not answer on a host that does, and the job ends within 40 s.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
TRAIN="$RUNFILES/launch/train"
TOKENIZE="$RUNFILES/tools/tokenize"
CKPT="$RUNFILES/tools/ckpt"
CONFIG="$RUNFILES/launch/configs/lm/tiny.textproto"
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$RUNFILES/tests/netns_common.sh"

"$TOKENIZE" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >/dev/null 2>&1 || fail tokenize
common=(--config="$CONFIG" --set=data.tokenizer=byte
  --set="data.train_shards=$WORK/shards/train_*.bin" --set="data.val_shards=$WORK/shards/val_*.bin"
  --set=model.d_model=32 --set=model.num_layers=2 --set=model.mixer.num_heads=2
  --set=train.seq_len=32 --set=train.global_batch_size=8 --set=train.micro_batch_size=2
  --set=train.max_steps=30 --set=train.log_every=1 --set=train.eval_every=10
  --set=train.eval_batches=2 --set=train.eval_batch_size=2 --set=optimizer.lr=3e-3
  --set=train.num_threads=1 --set=logging.progress=plain
  --set=checkpoint.every_steps=4 --set=checkpoint.keep_last=2)

same_run() {  # same_run A B: metrics and final weights bitwise equal (tests/same_run.py)
  python3 "$RUNFILES/tests/same_run.py" "$1" "$2" || fail "$1 and $2 differ"
}

# fault NAME NET BOUND_S WRAPPER_OPTIONS... -- TRAIN_OPTIONS...: train, cut NET of node2 after the
# checkpoint of step 8, wait for the job to end (at most BOUND_S), restore the link, check the
# checkpoint and resume. Sets RC (mpirun's exit code) and ENDED_S.
fault() {
  local name=$1 net=$2 bound=$3
  shift 3
  local wrapper=()
  while [[ $1 != -- ]]; do wrapper+=("$1"); shift; done
  shift
  mh_bg "$WORK/$name.fault.log" "${wrapper[@]}" -- "$TRAIN" "${common[@]}" "$@" --run_dir="$WORK/$name"
  for _ in $(seq 1200); do
    [[ -f $WORK/$name/checkpoints/step_00000008/DONE ]] && break
    kill -0 "$MH_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$MH_PID" 2>/dev/null && [[ -f $WORK/$name/checkpoints/step_00000008/DONE ]] \
    || { cat "$WORK/$name.fault.log"; fail "$name: the run ended before the fault"; }
  local start=$SECONDS t0
  t0=$(date +%s.%N)
  "$NETNS" link "$HOSTS" node2 "$net" down
  echo "== $name: node2's $net link(s) down at step $(grep -c '"loss"' "$WORK/$name/metrics.jsonl") of 30"
  while (( SECONDS - start <= bound )); do
    if ! kill -0 "$MH_PID" 2>/dev/null && netns_quiet; then break; fi
    sleep 0.2
  done
  ENDED_S=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")
  if kill -0 "$MH_PID" 2>/dev/null || ! netns_quiet; then
    echo "still running after $bound s:" >&2
    "$NETNS" pids "$HOSTS" | xargs -r ps -o pid,args -p >&2 || true
    netns_kill_all || true
    cat "$WORK/$name.fault.log" >&2
    fail "$name: the job did not end within $bound s of the cut"
  fi
  RC=0
  { wait "$MH_PID"; } 2>/dev/null || RC=$?
  echo "$name: mpirun exited $RC and every process on both hosts had ended ${ENDED_S} s after the cut"
  [[ $RC != 0 ]] || { cat "$WORK/$name.fault.log"; fail "$name: exit code 0 after a network fault"; }
  "$NETNS" link "$HOSTS" node2 all up
  # The newest complete checkpoint is intact, and a newer partial one (if the cut came during a
  # write) is ignored.
  "$CKPT" verify "$WORK/$name" >"$WORK/$name.verify.log" 2>&1 \
    || { cat "$WORK/$name.verify.log"; fail "$name: the last complete checkpoint does not verify"; }
  cat "$WORK/$name.verify.log"
}

mh -- "$TRAIN" "${common[@]}" --run_dir="$WORK/ref" >"$WORK/ref.log" 2>&1 || { cat "$WORK/ref.log"; fail "reference run"; }

# A. The data network of node2 fails; the launcher's network stays up.
fault data data 40 -- --set=parallel.collective_timeout_s=10
log="$WORK/data.fault.log"
grep "did not complete within 10 s on host" "$log" || { cat "$log"; fail "A: no watchdog message"; }
grep -Eq "^loom: rank [01]: .* on host node1; lost contact with ranks 2-3 on node2 \(10\.78\.0\.2\): no answer" "$log" \
  || { cat "$log"; fail "A: node1's ranks did not name node2's ranks as lost"; }
grep -Eq "^loom: rank [23]: .* on host node2; lost contact with ranks 0-1 on node1 \(10\.78\.0\.1\): no answer" "$log" \
  || { cat "$log"; fail "A: node2's ranks did not name node1's ranks as lost"; }
(( ${ENDED_S%.*} >= 10 )) || fail "A: ended after ${ENDED_S} s, before the collective timeout"
mh -- "$TRAIN" "${common[@]}" --set=parallel.collective_timeout_s=10 --run_dir="$WORK/data" \
  >"$WORK/data.log" 2>&1 || { cat "$WORK/data.log"; fail "A: resume"; }
grep -o "resumed from .*" "$WORK/data.log" | head -1 || fail "A: did not resume"
same_run "$WORK/ref" "$WORK/data"

# B. node2 vanishes: Open MPI notices the lost daemon first (6 s < 60 s).
fault host all 30 --host-timeout 6 -- --set=parallel.collective_timeout_s=60
log="$WORK/host.fault.log"
grep -q "ORTE has lost communication with a remote daemon" "$log" && grep -q "on node 10.77.0.2" "$log" \
  || { cat "$log"; fail "B: Open MPI did not report the lost host"; }
grep -A4 "ORTE has lost communication" "$log" | grep "Remote daemon"
grep -q "did not complete within" "$log" && { cat "$log"; fail "B: the watchdog fired before Open MPI"; }
mh --host-timeout 6 -- "$TRAIN" "${common[@]}" --set=parallel.collective_timeout_s=60 \
  --run_dir="$WORK/host" >"$WORK/host.log" 2>&1 || { cat "$WORK/host.log"; fail "B: resume"; }
grep -o "resumed from .*" "$WORK/host.log" | head -1 || fail "B: did not resume"
same_run "$WORK/ref" "$WORK/host"

# C. A frozen rank on a healthy network.
mh_bg "$WORK/frozen.log" -- "$TRAIN" "${common[@]}" --set=parallel.collective_timeout_s=10 \
  --run_dir="$WORK/frozen"
for _ in $(seq 1200); do
  grep -q '"step":3,' "$WORK/frozen/metrics.jsonl" 2>/dev/null && break
  kill -0 "$MH_PID" 2>/dev/null || break
  sleep 0.05
done
victim=""
for pid in $("$NETNS" pids "$HOSTS" node2); do
  if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=3" \
      && grep -q "launch/train" "/proc/$pid/cmdline" 2>/dev/null; then
    victim=$pid
  fi
done
[[ -n $victim ]] || { cat "$WORK/frozen.log"; fail "C: rank 3 not found on node2"; }
kill -STOP "$victim"
start=$SECONDS
while (( SECONDS - start <= 40 )); do
  if ! kill -0 "$MH_PID" 2>/dev/null && netns_quiet; then break; fi
  sleep 0.2
done
if kill -0 "$MH_PID" 2>/dev/null || ! netns_quiet; then
  netns_kill_all || true
  cat "$WORK/frozen.log" >&2
  fail "C: the job did not end within 40 s of freezing rank 3"
fi
{ wait "$MH_PID"; } 2>/dev/null && fail "C: exit code 0"
echo "C: rank 3 frozen; the job ended after $((SECONDS - start)) s"
grep -E "^loom: rank [0-2]: .*lost contact with rank 3 on node2 \(10\.78\.0\.2\): the host accepts the connection but the process does not answer" "$WORK/frozen.log" \
  || { cat "$WORK/frozen.log"; fail "C: the frozen rank was not named"; }
echo PASS
