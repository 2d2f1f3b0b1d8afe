#!/usr/bin/env bash
# Self-guided training end to end through `train`: the alpha schedule per optimizer step, the
# fixedflop repetition of the guided phase's data, the total step count, and the cumulative FLOPs
# in metrics.jsonl agreeing with //tools:flops for the same config.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
TRAIN="$RUNFILES/launch/train"
TOKENIZE="$RUNFILES/tools/tokenize"
FLOPS="$RUNFILES/tools/flops"
CONFIG="$RUNFILES/launch/configs/lm/tiny_lowrank_sgt.textproto"
# Fresh even if Bazel reuses TEST_TMPDIR between runs (old run dirs would be resumed).
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }

"$TOKENIZE" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >/dev/null

common=(--config="$CONFIG" --set=data.tokenizer=byte
  --set="data.train_shards=$WORK/shards/train_*.bin" --set="data.val_shards=$WORK/shards/val_*.bin"
  --set=model.d_model=32 --set=model.num_layers=3 --set=model.mixer.num_heads=2
  --set=model.ffn.rank=8 --set=train.seq_len=32 --set=train.global_batch_size=4
  --set=train.micro_batch_size=2 --set=train.max_steps=20 --set=train.log_every=1
  --set=train.eval_every=0 --set=train.eval_batches=2 --set=train.num_threads=1
  --set=logging.progress=plain --set=schedule.self_guided.max_step_ratio=0.5)

for mode in fixedflop fixedstep; do
  "$TRAIN" "${common[@]}" --set=schedule.self_guided.mode=$mode --run_dir="$WORK/$mode" \
    >"$WORK/$mode.log" 2>&1 || { cat "$WORK/$mode.log"; fail "train ($mode)"; }
  "$FLOPS" "${common[@]}" --set=schedule.self_guided.mode=$mode --json >"$WORK/$mode.flops.json" \
    || fail "flops ($mode)"
  python3 - "$WORK/$mode/metrics.jsonl" "$WORK/$mode.flops.json" "$mode" <<'PY'
import json, math, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
flops = json.load(open(sys.argv[2]))
mode = sys.argv[3]
T, guided = 20, 10
total = T + guided if mode == "fixedflop" else T
assert [r["step"] for r in recs] == list(range(1, total + 1)), [r["step"] for r in recs]
for r in recs:
    k = r["step"] - 1  # the optimizer step this record describes
    want = 0.5 * (1 + math.cos(math.pi * k / guided)) if k < guided else 0.0
    assert abs(r["alpha"] - want) < 1e-12, (k, r["alpha"], want)
    want_data = k if k < T else k - T
    assert r["data_step"] == want_data, (k, r["data_step"], want_data)
    assert math.isfinite(r["loss"])
rel = abs(recs[-1]["flops"] - flops["train_flops"]) / flops["train_flops"]
assert rel < 1e-9, (recs[-1]["flops"], flops["train_flops"])
assert flops["tokens"] == T * 4 * 32, flops
print(f"{mode}: {len(recs)} steps, alpha schedule and data steps as specified, flops {flops['train_flops']:.4g}")
PY
done
grep -q "guide for 10 steps" "$WORK/fixedflop.log" || fail "no self-guided banner"
grep -q "steps 20-29 repeat the guided phase's data" "$WORK/fixedflop.log" || fail "no repeat banner"
echo OK
