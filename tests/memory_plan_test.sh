#!/usr/bin/env bash
# `train --dry_run` predicts the peak tensor memory of a real run within 20%: for each case the
# plan's "tensors, peak" is compared with the "peak memory: tensors" that `train` measures
# (core/tensor_memory.h) after 3 steps. Cases: dense float32; LowRank with self-guided guides
# (reduce_flop off, so the guide runs); BlockShuffle + GQA + SwiGLU under ZeRO-1 on 2 ranks;
# float64; bf16 mixed precision with ZeRO-1 on 2 ranks.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
source "$RUNFILES/tests/mpi_common.sh"
TRAIN="$RUNFILES/launch/train"
TOKENIZE="$RUNFILES/tools/tokenize"
CONFIGS="$RUNFILES/launch/configs/lm"
# Fresh even if Bazel reuses TEST_TMPDIR between runs (old run dirs would be resumed).
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }

"$TOKENIZE" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >/dev/null 2>&1 || fail tokenize
common=(--set=data.tokenizer=byte --set=model.vocab_size=257
  --set="data.train_shards=$WORK/shards/train_*.bin" --set="data.val_shards=$WORK/shards/val_*.bin"
  --set=model.d_model=256 --set=model.num_layers=4 --set=model.mixer.num_heads=4
  --set=train.seq_len=256 --set=train.global_batch_size=32 --set=train.micro_batch_size=16
  --set=train.max_steps=3 --set=train.eval_every=0 --set=train.eval_batches=1
  --set=train.num_threads=1 --set=logging.progress=plain)

check() {  # check NAME NP CONFIG extra-args...
  local name=$1 np=$2 config=$3; shift 3
  local args=(--config="$CONFIGS/$config" "${common[@]}" "$@")
  local launch=()
  [[ $np -gt 1 ]] && launch=(loom_mpirun -np "$np")
  "${launch[@]}" "$TRAIN" "${args[@]}" --dry_run >"$WORK/$name.plan" 2>&1 || { cat "$WORK/$name.plan"; fail "$name: dry run"; }
  "${launch[@]}" "$TRAIN" "${args[@]}" --run_dir="$WORK/$name" >"$WORK/$name.log" 2>&1 || { cat "$WORK/$name.log"; fail "$name: train"; }
  local plan measured
  plan=$(sed -n 's/.*tensors, peak.*(\([0-9]*\) bytes).*/\1/p' "$WORK/$name.plan")
  measured=$(sed -n 's/.*peak memory: tensors [0-9.]* MiB (\([0-9]*\) bytes).*/\1/p' "$WORK/$name.log")
  [[ -n "$plan" && -n "$measured" ]] || { cat "$WORK/$name.plan" "$WORK/$name.log"; fail "$name: numbers not found"; }
  python3 - "$name" "$plan" "$measured" <<'PY' || { cat "$WORK/$name.plan"; fail "$1 off by more than 20%"; }
import sys
name, plan, measured = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
err = (plan - measured) / measured
print(f"{name}: plan {plan / 2**20:.1f} MiB, measured {measured / 2**20:.1f} MiB, {err:+.1%}")
assert abs(err) < 0.20
PY
}

check dense 1 tiny.textproto
check lowrank_sgt 1 tiny_lowrank_sgt.textproto --set=model.ffn.rank=64 \
  --set=schedule.self_guided.reduce_flop=false --set=schedule.self_guided.max_step_ratio=1.0
check shuffle_gqa_zero1 2 tiny.textproto --set=model.ffn.type=blockshuffle --set=model.ffn.nblocks=4 \
  --set=model.mixer.num_kv_heads=2 --set=model.ffn.activation=swiglu --set=optimizer.zero_stage=1
check float64 1 tiny.textproto --set=model.dtype=float64 --set=train.micro_batch_size=8
check bfloat16_zero1 2 tiny.textproto --set=model.dtype=bfloat16 --set=optimizer.zero_stage=1
grep -q "2 ranks, ZeRO-1" "$WORK/shuffle_gqa_zero1.plan" || fail "plan does not show the world size"
echo PASS
