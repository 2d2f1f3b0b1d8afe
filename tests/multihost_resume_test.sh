#!/usr/bin/env bash
# Checkpoint and resume across hosts (2 namespace hosts x 2 ranks, launch/mpirun_hosts.sh):
#  1. the job is killed (SIGKILL to every process on every host, mpirun included) at a random
#     step, host node2 is deleted and created again (a new network namespace, same addresses),
#     and the same command resumes: per-step losses, grad norms, val losses and final weights
#     are bitwise equal to an uninterrupted 2 x 2 run (self-guided training with its reduce_flop
#     generators across the kill);
#  2. SIGUSR1 to mpirun reaches the ranks on both hosts: they checkpoint at the same step and
#     the job exits 0; node1 is recreated and the same command finishes the run, bitwise equal.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
TRAIN="$RUNFILES/launch/train"
TOKENIZE="$RUNFILES/tools/tokenize"
CONFIG="$RUNFILES/launch/configs/lm/tiny_lowrank_sgt.textproto"
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$RUNFILES/tests/netns_common.sh"

"$TOKENIZE" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >/dev/null 2>&1 || fail tokenize
# 10 steps + 5 repeated (fixedflop, max_step_ratio 0.5) = 15 optimizer steps; a checkpoint
# every 3.
common=(--config="$CONFIG" --set=data.tokenizer=byte --set=model.vocab_size=257
  --set="data.train_shards=$WORK/shards/train_*.bin" --set="data.val_shards=$WORK/shards/val_*.bin"
  --set=model.d_model=32 --set=model.num_layers=3 --set=model.mixer.num_heads=2
  --set=model.ffn.rank=8 --set=schedule.self_guided.max_step_ratio=0.5
  --set=train.seq_len=32 --set=train.global_batch_size=8 --set=train.micro_batch_size=2
  --set=train.max_steps=10 --set=train.log_every=1 --set=train.eval_every=4 --set=train.eval_batches=2
  --set=train.eval_batch_size=2 --set=train.num_threads=1 --set=logging.progress=plain
  --set=checkpoint.every_steps=3 --set=checkpoint.keep_last=2 --set=parallel.collective_timeout_s=120)

same_run() {  # same_run A B: metrics and final weights bitwise equal (tests/same_run.py)
  python3 "$RUNFILES/tests/same_run.py" "$1" "$2" || fail "$1 and $2 differ"
}

wait_step() {  # wait_step DIR STEP: until metrics.jsonl has a train record of STEP (or mpirun ended)
  for _ in $(seq 1200); do
    grep -q "^{\"step\":$2,.*\"loss\"" "$1/metrics.jsonl" 2>/dev/null && return 0
    kill -0 "$MH_PID" 2>/dev/null || return 0
    sleep 0.1
  done
}

netns_inode() { stat -L -c %i "/var/run/netns/$NETNS_PREFIX-$1"; }

mh -- "$TRAIN" "${common[@]}" --run_dir="$WORK/ref" >"$WORK/ref.log" 2>&1 || { cat "$WORK/ref.log"; fail "reference run"; }
grep -q "self-guided" "$WORK/ref.log" || fail "self-guided training not active"
grep -q "^loom: 4 ranks on 2 hosts" "$WORK/ref.log" || { cat "$WORK/ref.log"; fail "not 2 hosts x 2 ranks"; }

# 1. Killed everywhere at a random step, node2 recreated, resumed.
k=$((4 + RANDOM % 9))
echo "== killing every process of the job at step $k"
mh_bg "$WORK/kill.killed.log" -- "$TRAIN" "${common[@]}" --run_dir="$WORK/kill"
wait_step "$WORK/kill" $k
netns_kill_all || fail "processes left after the kill: $("$NETNS" pids "$HOSTS" | xargs ps -o pid,args -p)"
{ wait "$MH_PID"; } 2>/dev/null || true
ls -d "$WORK/kill/checkpoints"/step_* >/dev/null 2>&1 || fail "no checkpoint before the kill"
before=$(netns_inode node2)
"$NETNS" recreate "$HOSTS" node2
[[ $(netns_inode node2) != "$before" ]] || fail "node2 was not recreated"
echo "node2 recreated (network namespace $before -> $(netns_inode node2))"
mh -- "$TRAIN" "${common[@]}" --run_dir="$WORK/kill" >"$WORK/kill.log" 2>&1 || { cat "$WORK/kill.log"; fail "resume"; }
grep -o "resumed from .*" "$WORK/kill.log" | head -1 || { cat "$WORK/kill.log"; fail "did not resume"; }
same_run "$WORK/ref" "$WORK/kill"

# 2. SIGUSR1 to mpirun: every rank on both hosts checkpoints and stops, exit 0.
mh_bg "$WORK/usr1.stopped.log" -- "$TRAIN" "${common[@]}" --run_dir="$WORK/usr1"
wait_step "$WORK/usr1" 2
kill -USR1 "$MH_PID"
rc=0
wait "$MH_PID" || rc=$?
[[ $rc == 0 ]] && grep -q "stopped by signal" "$WORK/usr1.stopped.log" \
  || { cat "$WORK/usr1.stopped.log"; fail "SIGUSR1 across hosts (exit code $rc)"; }
grep -o "stopped by signal.*" "$WORK/usr1.stopped.log"
netns_quiet || fail "processes left after the stop"
"$NETNS" recreate "$HOSTS" node1
mh -- "$TRAIN" "${common[@]}" --run_dir="$WORK/usr1" >"$WORK/usr1.log" 2>&1 || { cat "$WORK/usr1.log"; fail "resume after SIGUSR1"; }
grep -q "resumed from" "$WORK/usr1.log" || fail "did not resume after SIGUSR1"
same_run "$WORK/ref" "$WORK/usr1"
echo PASS
