#!/usr/bin/env bash
# Data-parallel `train` under real mpirun ranks is the same training as one process:
#  - 1, 2 and 4 ranks, same global batch (float64): loss, grad_norm and val_loss at every step and
#    the final weights (model.safetensors, read by Python) agree to 1e-10 relative;
#  - ZeRO-1 against all-reduce on 2 ranks (float64, 1e-10);
#  - gradient accumulation (micro-batch 2 x 4) against one micro-batch of 8 (float64, 1e-10);
#  - float32, 2 ranks against 1: losses, grad norms and val losses to 1e-5 relative (the
#    summation order differs; float32 rounding is 6e-8 per op), weights to 1e-3 of each tensor's
#    largest entry: AdamW divides by sqrt(v), so a parameter whose gradient is near zero (a fresh
#    bias) takes a step of up to lr whose size depends on rounding, 6 steps x lr 3e-3;
#  - bfloat16 mixed precision (bf16 compute, fp32 masters): 2 ranks with ZeRO-1 against 1 rank
#    to 1e-2 in metrics and 2e-2 in weights (bf16 rounds at 4e-3), and its final val loss within
#    2% of float32 training;
#  - a rank killed mid-training ends the whole job, non-zero, within 60 s;
#  - an error on one rank (bad world size) ends the job with that rank's message.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
source "$RUNFILES/tests/mpi_common.sh"
TRAIN="$RUNFILES/launch/train"
TOKENIZE="$RUNFILES/tools/tokenize"
CONFIG="$RUNFILES/launch/configs/lm/tiny.textproto"
# Fresh even if Bazel reuses TEST_TMPDIR between runs (old run dirs would be resumed).
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }

"$TOKENIZE" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >"$WORK/tokenize.log" 2>&1 || { cat "$WORK/tokenize.log"; fail tokenize; }

common=(--config="$CONFIG" --set=data.tokenizer=byte
  --set="data.train_shards=$WORK/shards/train_*.bin" --set="data.val_shards=$WORK/shards/val_*.bin"
  --set=model.d_model=32 --set=model.num_layers=2 --set=model.mixer.num_heads=2
  --set=train.seq_len=32 --set=train.global_batch_size=8 --set=train.max_steps=6
  --set=train.log_every=1 --set=train.eval_every=3 --set=train.eval_batches=4
  --set=optimizer.lr=3e-3 --set=train.num_threads=1 --set=logging.progress=plain
  --set=train.eval_batch_size=2 --set=parallel.bucket_mb=0.05)

run() {  # run NAME NP extra-args...
  local name=$1 np=$2; shift 2
  if [[ $np == 1 ]]; then
    "$TRAIN" "${common[@]}" "$@" --run_dir="$WORK/$name" >"$WORK/$name.log" 2>&1 || { cat "$WORK/$name.log"; fail "$name"; }
  else
    loom_mpirun -np "$np" "$TRAIN" "${common[@]}" "$@" --run_dir="$WORK/$name" >"$WORK/$name.log" 2>&1 || { cat "$WORK/$name.log"; fail "$name"; }
  fi
}

f64=(--set=model.dtype=float64)
run r1 1 "${f64[@]}" --set=train.micro_batch_size=2
run r2 2 "${f64[@]}" --set=train.micro_batch_size=2 --set=parallel.overlap=on
run r4 4 "${f64[@]}" --set=train.micro_batch_size=2
run r2z 2 "${f64[@]}" --set=train.micro_batch_size=2 --set=optimizer.zero_stage=1 --set=parallel.overlap=on
run r4z 4 "${f64[@]}" --set=train.micro_batch_size=1 --set=optimizer.zero_stage=1 --set=parallel.overlap=off
run r1big 1 "${f64[@]}" --set=train.micro_batch_size=8
run f1 1 --set=train.micro_batch_size=2
run f2 2 --set=train.micro_batch_size=2
run b1 1 --set=model.dtype=bfloat16 --set=train.micro_batch_size=2
run b2 2 --set=model.dtype=bfloat16 --set=train.micro_batch_size=2 --set=optimizer.zero_stage=1
grep -q "x 2 ranks (mpi, ZeRO-1)" "$WORK/r2z.log" || { cat "$WORK/r2z.log"; fail "banner does not show 2 ranks, ZeRO-1"; }

# train.num_threads = 0 without OMP_NUM_THREADS shares the host's cores among its ranks (the
# ranks here are unbound): 2 ranks get min(usable cores, online cores / 2) threads each, not
# every core each (which oversubscribed them). With OMP_NUM_THREADS set, that count is used.
LOOM_MPIRUN_OMP_THREADS= run t2 2 --set=train.micro_batch_size=2 --set=train.num_threads=0 \
  --set=train.max_steps=1
want=$(( $(nproc --all) / 2 )); (( want <= $(nproc) )) || want=$(nproc); (( want >= 1 )) || want=1
grep -q "| $want threads x 2 ranks" "$WORK/t2.log" || { cat "$WORK/t2.log"; fail "2 unbound ranks should run $want threads each"; }
LOOM_MPIRUN_OMP_THREADS=3 run t3 2 --set=train.micro_batch_size=2 --set=train.num_threads=0 \
  --set=train.max_steps=1
grep -q "| 3 threads x 2 ranks" "$WORK/t3.log" || { cat "$WORK/t3.log"; fail "OMP_NUM_THREADS=3 is not honoured"; }

python3 "$RUNFILES/tests/close_runs.py" "$WORK" r2:r1:1e-10 r4:r1:1e-10 r2z:r2:1e-10 r4z:r1:1e-10 \
  r1big:r1:1e-10 f2:f1:1e-5:1e-3 b2:b1:1e-2:2e-2 || fail "runs differ"
# (b2 vs b1: bf16 compute with fp32 masters, 2 ranks with ZeRO-1 against 1 rank.) bf16 against
# float32 training: final val losses within 2%.
python3 - "$WORK" <<'PY' || fail "bf16 training drifted from float32"
import json, sys
def final_val(name):
    return [json.loads(l)["val_loss"] for l in open(f"{sys.argv[1]}/{name}/metrics.jsonl") if "val_loss" in l][-1]
vb, vf = final_val("b1"), final_val("f1")
print(f"final val loss: bfloat16 {vb:.4f}, float32 {vf:.4f}")
assert abs(vb - vf) / vf < 0.02, (vb, vf)
PY

# A rank killed mid-training ends the job.
loom_mpirun -np 2 "$TRAIN" "${common[@]}" --set=train.max_steps=100000 --set=train.eval_every=0 \
  --set=train.micro_batch_size=1 --run_dir="$WORK/killed" >"$WORK/killed.log" 2>&1 &
MPIRUN=$!
for _ in $(seq 600); do
  [[ -s "$WORK/killed/metrics.jsonl" ]] && grep -q '"loss"' "$WORK/killed/metrics.jsonl" && break
  sleep 0.1
done
grep -q '"loss"' "$WORK/killed/metrics.jsonl" || { kill -9 $MPIRUN; cat "$WORK/killed.log"; fail "killed run never started training"; }
victim=$(pgrep -P $MPIRUN -f launch/train | tail -1)
[[ -n "$victim" ]] || fail "no rank process under mpirun"
start=$SECONDS
kill -9 "$victim"
rc=0
for _ in $(seq 600); do kill -0 $MPIRUN 2>/dev/null || break; sleep 0.1; done
if kill -0 $MPIRUN 2>/dev/null; then kill -9 $MPIRUN; fail "job still running 60 s after a rank died"; fi
wait $MPIRUN || rc=$?
echo "killed rank $victim: job ended after $((SECONDS - start)) s with exit code $rc"
[[ $rc != 0 ]] || fail "job exited 0 after a rank was killed"

# An error on the ranks (expected_world_size mismatch) ends the job with the message.
rc=0
loom_mpirun -np 2 "$TRAIN" "${common[@]}" --set=parallel.expected_world_size=4 \
  --run_dir="$WORK/bad" >"$WORK/bad.log" 2>&1 || rc=$?
[[ $rc != 0 ]] || fail "world size mismatch accepted"
grep -q "expected_world_size is 4 but the job has 2 ranks" "$WORK/bad.log" || { cat "$WORK/bad.log"; fail "no clear message"; }
echo "PASS"
