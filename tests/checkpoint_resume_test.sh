#!/usr/bin/env bash
# Checkpoints through the real `train` binary:
#  1. exact resume: a run killed with SIGKILL at a random step (self-guided training with
#     reduce_flop active across the kill) and restarted with the same command ends with the same
#     per-step losses, grad norms, val losses and final weights, bit for bit, as an uninterrupted
#     run - on 1 rank and on 2 MPI ranks;
#  2. SIGTERM (1 rank) and SIGUSR1 to mpirun (2 ranks) checkpoint and exit cleanly (exit 0); the
#     same command finishes the run, bitwise; a non-finite step halts with the step, the first
#     non-finite gradient and the last good checkpoint named, or is skipped and counted;
#  3. a crash between a checkpoint's files and its DONE leaves the previous checkpoint in use;
#  4. resuming on another world size with ZeRO-1 (float64) matches the 1-rank run to 1e-10;
#  5. a corrupt newest checkpoint and a changed config are refused with clear messages;
#  6. checkpoint.keep_last prunes old checkpoints.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
source "$RUNFILES/tests/mpi_common.sh"
TRAIN="$RUNFILES/launch/train"
TOKENIZE="$RUNFILES/tools/tokenize"
CONFIG="$RUNFILES/launch/configs/lm/tiny_lowrank_sgt.textproto"
# Fresh even if Bazel reuses TEST_TMPDIR between runs (old run dirs would be resumed).
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }

"$TOKENIZE" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >/dev/null 2>&1 || fail tokenize
# 10 steps + 5 repeated (fixedflop, max_step_ratio 0.5) = 15 optimizer steps.
common=(--config="$CONFIG" --set=data.tokenizer=byte --set=model.vocab_size=257
  --set="data.train_shards=$WORK/shards/train_*.bin" --set="data.val_shards=$WORK/shards/val_*.bin"
  --set=model.d_model=32 --set=model.num_layers=3 --set=model.mixer.num_heads=2
  --set=model.ffn.rank=8 --set=schedule.self_guided.max_step_ratio=0.5
  --set=train.seq_len=32 --set=train.global_batch_size=4 --set=train.micro_batch_size=2
  --set=train.max_steps=10 --set=train.log_every=1 --set=train.eval_every=4 --set=train.eval_batches=2
  --set=train.eval_batch_size=2 --set=train.num_threads=1 --set=logging.progress=plain
  --set=checkpoint.every_steps=3 --set=checkpoint.keep_last=2)

train1() { "$TRAIN" "${common[@]}" "$@"; }
train2() { loom_mpirun -np 2 "$TRAIN" "${common[@]}" "$@"; }

same_run() {  # same_run A B: metrics and final weights bitwise equal (tests/same_run.py)
  python3 "$RUNFILES/tests/same_run.py" "$1" "$2" || fail "$1 and $2 differ"
}

kill_at_step() {  # kill_at_step DIR STEP cmd...: start, SIGKILL once metrics reach STEP
  local dir=$1 at=$2; shift 2
  "$@" --run_dir="$dir" >"$dir.killed.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1200); do
    if [[ -f "$dir/metrics.jsonl" ]] && python3 -c "
import json,sys; s=[json.loads(l)['step'] for l in open('$dir/metrics.jsonl') if '\"loss\"' in l]
sys.exit(0 if s and max(s) >= $at else 1)" 2>/dev/null; then break; fi
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
  done
  # The job's processes: the launcher and its children.
  pkill -9 -P $pid 2>/dev/null || true
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
}

# 1. Exact resume, 1 rank and 2 ranks.
train1 --run_dir="$WORK/ref1" >"$WORK/ref1.log" 2>&1 || { cat "$WORK/ref1.log"; fail "reference run"; }
grep -q "self-guided" "$WORK/ref1.log" || fail "self-guided training not active"
k=$((4 + RANDOM % 9))
echo "== killing the 1-rank run at step $k"
kill_at_step "$WORK/kill1" $k train1
ls "$WORK/kill1/checkpoints" >/dev/null || fail "no checkpoint before the kill"
train1 --run_dir="$WORK/kill1" >"$WORK/kill1.log" 2>&1 || { cat "$WORK/kill1.log"; fail "resume"; }
grep -q "resumed from" "$WORK/kill1.log" || { cat "$WORK/kill1.log"; fail "did not resume"; }
same_run "$WORK/ref1" "$WORK/kill1"

train2 --run_dir="$WORK/ref2" >"$WORK/ref2.log" 2>&1 || { cat "$WORK/ref2.log"; fail "2-rank reference"; }
k=$((4 + RANDOM % 9))
echo "== killing the 2-rank run at step $k"
kill_at_step "$WORK/kill2" $k train2
train2 --run_dir="$WORK/kill2" >"$WORK/kill2.log" 2>&1 || { cat "$WORK/kill2.log"; fail "2-rank resume"; }
grep -q "resumed from" "$WORK/kill2.log" || fail "2 ranks did not resume"
same_run "$WORK/ref2" "$WORK/kill2"

# 2. SIGTERM: checkpoint at the end of the step, exit 0, then finish.
"$TRAIN" "${common[@]}" --run_dir="$WORK/term" >"$WORK/term.log" 2>&1 &
pid=$!  # the train process itself (not a shell function's subshell)
for _ in $(seq 600); do grep -q '"step":2,' "$WORK/term/metrics.jsonl" 2>/dev/null && break; sleep 0.05; done
kill -TERM $pid
rc=0; wait $pid || rc=$?
[[ $rc == 0 ]] || { cat "$WORK/term.log"; fail "SIGTERM exit code $rc"; }
grep -q "stopped by signal" "$WORK/term.log" || { cat "$WORK/term.log"; fail "no stop message"; }
train1 --run_dir="$WORK/term" >"$WORK/term2.log" 2>&1 || fail "resume after SIGTERM"
same_run "$WORK/ref1" "$WORK/term"

# 2b. 2 ranks: SIGUSR1 to mpirun (forwarded to the ranks; Slurm: sbatch --signal=USR1@120).
loom_mpirun -np 2 "$TRAIN" "${common[@]}" --run_dir="$WORK/usr1" >"$WORK/usr1.log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '"step":2,' "$WORK/usr1/metrics.jsonl" 2>/dev/null && break; sleep 0.05; done
mp=$(pgrep -f "^mpirun .*run_dir=$WORK/usr1" | head -1)
[[ -n "$mp" ]] || fail "mpirun process not found"
kill -USR1 "$mp"
rc=0; wait $pid || rc=$?
[[ $rc == 0 ]] && grep -q "stopped by signal" "$WORK/usr1.log" || { cat "$WORK/usr1.log"; fail "2-rank SIGUSR1 (rc $rc)"; }
train2 --run_dir="$WORK/usr1" >"$WORK/usr1b.log" 2>&1 || fail "resume after SIGUSR1"
same_run "$WORK/ref2" "$WORK/usr1"

# 2c. Non-finite: halt names the step, the tensor and the last checkpoint; "skip" counts.
rc=0; out=$(LOOM_TEST_NAN_GRAD_AT_STEP=7 train1 --run_dir="$WORK/nan" 2>&1) || rc=$?
[[ $rc != 0 ]] && grep -q "non-finite gradient norm in step 8 .*first non-finite: gradient of embedding.weight.*last good checkpoint: .*step_00000006" <<<"$out" \
  || fail "non-finite halt: $out"
grep -o "non-finite.*" <<<"$out" | head -1
[[ ! -d "$WORK/nan/checkpoints/step_00000009" ]] || fail "a checkpoint was written after the non-finite step"
LOOM_TEST_NAN_GRAD_AT_STEP=7 train1 --set=optimizer.nonfinite_policy=skip \
  --run_dir="$WORK/nanskip" >"$WORK/nanskip.log" 2>&1 || { cat "$WORK/nanskip.log"; fail "skip policy run"; }
grep -q '"step":8,.*"skipped_steps":1' "$WORK/nanskip/metrics.jsonl" || fail "skipped step not counted"

# 3. A crash between the files and DONE of step 6: step 3 is used.
rc=0
LOOM_TEST_CRASH_BEFORE_DONE=6 train1 --run_dir="$WORK/crash" >"$WORK/crash.log" 2>&1 || rc=$?
[[ $rc == 3 ]] || { cat "$WORK/crash.log"; fail "fault injection did not fire ($rc)"; }
[[ -f "$WORK/crash/checkpoints/step_00000006/model.safetensors" && ! -f "$WORK/crash/checkpoints/step_00000006/DONE" ]] \
  || fail "expected a partial step_00000006"
train1 --run_dir="$WORK/crash" >"$WORK/crash2.log" 2>&1 || { cat "$WORK/crash2.log"; fail "resume after crash"; }
grep -q "step_00000003 (step 3" "$WORK/crash2.log" || { cat "$WORK/crash2.log"; fail "did not fall back to step 3"; }
same_run "$WORK/ref1" "$WORK/crash"

# 4. Another world size and ZeRO-1 (float64): 1 rank to step 6, then 2 ranks.
f64=(--set=model.dtype=float64)
train1 "${f64[@]}" --run_dir="$WORK/w1" >/dev/null 2>&1 || fail "float64 reference"
LOOM_TEST_CRASH_BEFORE_DONE=9 train1 "${f64[@]}" --run_dir="$WORK/w2" >/dev/null 2>&1 || true
train2 "${f64[@]}" --set=optimizer.zero_stage=1 --run_dir="$WORK/w2" >"$WORK/w2.log" 2>&1 || { cat "$WORK/w2.log"; fail "resume on 2 ranks"; }
grep -q "resumed from" "$WORK/w2.log" || fail "2 ranks did not resume the 1-rank checkpoint"
python3 - "$WORK/w1" "$WORK/w2" <<'PY' || fail "world-size change changed the training"
import json, sys
from safetensors.numpy import load_file
a, b = sys.argv[1:]
la = {r["step"]: r["loss"] for r in map(json.loads, open(f"{a}/metrics.jsonl")) if "loss" in r}
lb = {r["step"]: r["loss"] for r in map(json.loads, open(f"{b}/metrics.jsonl")) if "loss" in r}
assert la.keys() == lb.keys()
worst = max(abs(la[s] - lb[s]) / abs(la[s]) for s in la)
wa, wb = load_file(f"{a}/model.safetensors"), load_file(f"{b}/model.safetensors")
worst = max([worst] + [float(abs(wa[k] - wb[k]).max() / abs(wa[k]).max()) for k in wa])
print(f"1 rank -> 2 ranks ZeRO-1 at step 6: worst relative difference {worst:.1e}")
assert worst < 1e-10
PY

# 5. Refusals.
newest=$(ls -d "$WORK/kill1/checkpoints"/step_* | tail -1)
python3 - "$newest/model.safetensors" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-5] ^= 0x40; open(p, "wb").write(bytes(b))
PY
rc=0; out=$(train1 --run_dir="$WORK/kill1" 2>&1) || rc=$?
[[ $rc != 0 ]] && grep -q "model.safetensors: CRC32C mismatch" <<<"$out" || fail "corrupt checkpoint not refused: $out"
rc=0; out=$(train1 --set=optimizer.lr=1e-2 --run_dir="$WORK/ref1" 2>&1) || rc=$?
[[ $rc != 0 ]] && grep -q "optimizer.lr\|lr:" <<<"$out" || fail "changed config not refused: $out"
echo "refusals: corrupt checkpoint and changed config, each named"

# 6. keep_last = 2.
n=$(ls -d "$WORK/ref1/checkpoints"/step_* | wc -l)
[[ $n == 2 ]] || fail "keep_last=2 left $n checkpoints"
echo PASS
