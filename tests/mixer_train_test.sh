#!/usr/bin/env bash
# The S4, S4D and SGConv mixers through the real `train` binary (byte-level corpus):
#  1. each trains: the loss falls, the SSM/kernel parameters get their own optimizer group
#     (lr 1e-3, weight decay 0 for S4's dt/A/B/P) and the checkpoints carry the function buffers
#     (S4's l_kernel, SGConv's kernel_norm);
#  2. a crash before a checkpoint's DONE and a restart continue exactly (bitwise metrics and
#     weights) - S4, and SGConv with residual dropout (model.dropout);
#  3. 2 MPI ranks train the same float64 model as 1 rank with the same global batch.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
source "$RUNFILES/tests/mpi_common.sh"
TRAIN="$RUNFILES/launch/train"
TOKENIZE="$RUNFILES/tools/tokenize"
CONFIGS="$RUNFILES/launch/configs/lm"
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }

"$TOKENIZE" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >/dev/null 2>&1 || fail tokenize
common=(--set=data.tokenizer=byte --set=model.vocab_size=257
  --set="data.train_shards=$WORK/shards/train_*.bin" --set="data.val_shards=$WORK/shards/val_*.bin"
  --set=model.d_model=32 --set=model.num_layers=2 --set=model.mixer.s4.d_state=16
  --set=model.mixer.sgconv.kernel_dim=4
  --set=train.seq_len=32 --set=train.global_batch_size=4 --set=train.micro_batch_size=2
  --set=train.max_steps=12 --set=train.log_every=1 --set=train.eval_every=6 --set=train.eval_batches=2
  --set=train.eval_batch_size=2 --set=train.num_threads=1 --set=logging.progress=plain
  --set=checkpoint.every_steps=4)

for mixer in s4 s4d sgconv; do
  run="$WORK/$mixer"
  "$TRAIN" --config="$CONFIGS/tiny_$mixer.textproto" "${common[@]}" --run_dir="$run" \
    >"$run.log" 2>&1 || { cat "$run.log"; fail "$mixer training"; }
  python3 - "$run" "$mixer" <<'PY' || fail "$mixer run checks"
import json, sys
from safetensors.numpy import load_file
run, mixer = sys.argv[1:]
losses = [r["loss"] for r in map(json.loads, open(f"{run}/metrics.jsonl")) if "loss" in r]
assert len(losses) == 12, losses
assert sum(losses[-3:]) / 3 < losses[0] - 0.3, f"{mixer}: loss did not fall: {losses}"
opt = load_file(f"{run}/checkpoints/step_00000012/optimizer.safetensors")
groups = sorted(k[len("step/"):] for k in opt if k.startswith("step/"))
want = {"s4": "override:lr=0.001,wd=0", "s4d": "override:lr=0.001,wd=0",
        "sgconv": "override:lr=0.001,wd=global"}[mixer]
assert want in groups, groups
if mixer != "sgconv":  # C keeps the global lr and weight decay: the plain model group
    assert "exp_avg/blocks.0.mixer.layer.kernel.C" in opt
w = load_file(f"{run}/model.safetensors")
if mixer == "s4":
    assert int(w["blocks.1.mixer.layer.kernel.l_kernel"]) == 32, w["blocks.1.mixer.layer.kernel.l_kernel"]
if mixer == "sgconv":
    assert w["blocks.0.mixer.kernel_norm"].shape == (1, 32, 1)
print(f"{mixer}: loss {losses[0]:.3f} -> {losses[-1]:.3f}; groups {groups}")
assert not any('global,wd=global' in g for g in groups), groups
PY
done

same_run() {  # same_run A B: metrics and final weights bitwise equal (tests/same_run.py)
  python3 "$RUNFILES/tests/same_run.py" "$1" "$2" || fail "$1 and $2 differ"
}

# SGConv with residual dropout: the RNG state in the checkpoint makes the masks resume exactly.
for mixer in s4 sgconv; do
  [[ $mixer == sgconv ]] && drop=(--set=model.dropout=0.1) || drop=()
  "$TRAIN" --config="$CONFIGS/tiny_$mixer.textproto" "${common[@]}" "${drop[@]}" \
    --run_dir="$WORK/${mixer}_ref" >"$WORK/${mixer}_ref.log" 2>&1 || { cat "$WORK/${mixer}_ref.log"; fail "$mixer reference"; }
  rc=0
  LOOM_TEST_CRASH_BEFORE_DONE=8 "$TRAIN" --config="$CONFIGS/tiny_$mixer.textproto" "${common[@]}" \
    "${drop[@]}" --run_dir="$WORK/${mixer}_crash" >"$WORK/${mixer}_crash.log" 2>&1 || rc=$?
  [[ $rc == 3 ]] || { cat "$WORK/${mixer}_crash.log"; fail "$mixer: fault injection did not fire ($rc)"; }
  "$TRAIN" --config="$CONFIGS/tiny_$mixer.textproto" "${common[@]}" "${drop[@]}" \
    --run_dir="$WORK/${mixer}_crash" >"$WORK/${mixer}_resume.log" 2>&1 || { cat "$WORK/${mixer}_resume.log"; fail "$mixer resume"; }
  grep -q "step_00000004 (step 4" "$WORK/${mixer}_resume.log" || { cat "$WORK/${mixer}_resume.log"; fail "$mixer: did not resume from step 4"; }
  same_run "$WORK/${mixer}_ref" "$WORK/${mixer}_crash"
done

f64=(--config="$CONFIGS/tiny_s4.textproto" "${common[@]}" --set=model.dtype=float64 --set=train.max_steps=6)
"$TRAIN" "${f64[@]}" --run_dir="$WORK/r1" >"$WORK/r1.log" 2>&1 || { cat "$WORK/r1.log"; fail "1 rank"; }
loom_mpirun -np 2 "$TRAIN" "${f64[@]}" --run_dir="$WORK/r2" >"$WORK/r2.log" 2>&1 || { cat "$WORK/r2.log"; fail "2 ranks"; }
python3 - "$WORK/r1" "$WORK/r2" <<'PY' || fail "2 ranks differ from 1 rank"
import json, sys
import numpy as np
from safetensors.numpy import load_file
a, b = sys.argv[1:]
la = {r["step"]: r["loss"] for r in map(json.loads, open(f"{a}/metrics.jsonl")) if "loss" in r}
lb = {r["step"]: r["loss"] for r in map(json.loads, open(f"{b}/metrics.jsonl")) if "loss" in r}
assert la.keys() == lb.keys() and len(la) == 6
worst = max(abs(la[s] - lb[s]) / abs(la[s]) for s in la)
wa, wb = load_file(f"{a}/model.safetensors"), load_file(f"{b}/model.safetensors")
wworst = max(float(np.max(np.abs(wa[k] - wb[k]))) for k in wa)
assert worst < 1e-12 and wworst < 1e-10, (worst, wworst)
print(f"S4, 2 ranks vs 1 rank (float64): losses {worst:.1e} relative, weights {wworst:.1e}")
PY
echo OK
