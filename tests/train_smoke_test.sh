#!/usr/bin/env bash
# End to end through the real binaries: tokenize a corpus, train a small LM, check that the
# validation loss falls and metrics.jsonl has the contracted fields; then check that bad input
# (config fields, overrides, corrupt shards) is refused with a message naming what is wrong.
set -euo pipefail

RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
TRAIN="$RUNFILES/launch/train"
TOKENIZE="$RUNFILES/tools/tokenize"
CONFIG="$RUNFILES/launch/configs/lm/tiny.textproto"
# Fresh even if Bazel reuses TEST_TMPDIR between runs (old run dirs would be resumed).
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. Tokenize two bundled books at byte level (fast; the GPT-2 path has its own golden tests).
"$TOKENIZE" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt,$RUNFILES/data/corpus/blake-poems.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >"$WORK/tokenize.log" 2>&1 || { cat "$WORK/tokenize.log"; fail "tokenize"; }
ls "$WORK/shards/train_000000.bin" "$WORK/shards/val_000000.bin" >/dev/null

# 2. Train a small model for 60 steps.
common=(--config="$CONFIG"
  --set=data.tokenizer=byte
  --set="data.train_shards=$WORK/shards/train_*.bin"
  --set="data.val_shards=$WORK/shards/val_*.bin"
  --set=model.d_model=64 --set=model.num_layers=2 --set=model.mixer.num_heads=2
  --set=train.seq_len=64 --set=train.global_batch_size=8 --set=train.micro_batch_size=4
  --set=train.max_steps=60 --set=train.eval_every=30 --set=train.eval_batches=4
  --set=optimizer.lr=3e-3 --set=train.num_threads=1 --set=logging.progress=plain)
"$TRAIN" "${common[@]}" --run_dir="$WORK/run" >"$WORK/train.log" 2>&1 || { cat "$WORK/train.log"; fail "train exited non-zero"; }
cat "$WORK/train.log"
[[ -f "$WORK/run/config.textproto" ]] || fail "no resolved config.textproto"
grep -q "vocab_size: 257" "$WORK/run/config.textproto" || fail "resolved config lacks the byte vocab size"

python3 - "$WORK/run/metrics.jsonl" <<'PY'
import json, math, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in recs if "loss" in r]
evals = [r for r in recs if "val_loss" in r]
assert train, "no training records"
for r in train:
    for k in ("step", "tokens", "loss", "lr", "grad_norm", "alpha", "tokens_per_s", "flops", "mfu"):
        assert k in r, f"metrics record lacks {k}: {r}"
    assert math.isfinite(r["loss"]) and r["tokens_per_s"] > 0 and r["flops"] > 0
assert [e["step"] for e in evals] == [0, 30, 60], evals
first, last = evals[0]["val_loss"], evals[-1]["val_loss"]
assert abs(first - math.log(257)) < 0.3, f"initial val loss {first} should be near ln(257)"
assert last < first - 1.5, f"val loss did not clearly fall: {first} -> {last}"
assert train[-1]["step"] == 60 and train[-1]["tokens"] == 60 * 8 * 64
print(f"val loss {first:.3f} -> {last:.3f}")
PY

# 3. Same config, same seed: the run is deterministic.
"$TRAIN" "${common[@]}" --set=train.max_steps=5 --set=train.log_every=5 --run_dir="$WORK/det1" >/dev/null 2>&1
"$TRAIN" "${common[@]}" --set=train.max_steps=5 --set=train.log_every=5 --run_dir="$WORK/det2" >/dev/null 2>&1
diff <(python3 -c 'import json,sys; print([json.loads(l).get("loss") for l in open(sys.argv[1])])' "$WORK/det1/metrics.jsonl") \
     <(python3 -c 'import json,sys; print([json.loads(l).get("loss") for l in open(sys.argv[1])])' "$WORK/det2/metrics.jsonl") \
  || fail "two identical runs gave different losses"

# 4. Bad input is refused before training, naming the field / file.
expect_error() {  # expect_error "substring" args...
  local want="$1"; shift
  local out rc=0
  out=$("$TRAIN" "$@" 2>&1) || rc=$?
  [[ $rc -ne 0 ]] || fail "expected failure for: $*"
  grep -qF -- "$want" <<<"$out" || fail "message for [$*] lacks '$want': $out"
}
expect_error "train.seq_len" "${common[@]}" --set=train.seq_len=0 --run_dir="$WORK/bad1"
expect_error "optimizer.lr" "${common[@]}" --set=optimizer.lr=-1 --run_dir="$WORK/bad2"
expect_error "train.max_stepz" "${common[@]}" --set=train.max_stepz=3 --run_dir="$WORK/bad3"
printf 'train { max_steps: "lots" }\n' >"$WORK/bad.textproto"
expect_error "bad.textproto:1" --config="$WORK/bad.textproto"
expect_error "no/such/config.textproto" --config=no/such/config.textproto
expect_error "already holds a run" "${common[@]}" --run_dir="$WORK/run"

# A truncated shard is refused, naming the file.
mkdir -p "$WORK/corrupt"
head -c 2000 "$WORK/shards/train_000000.bin" >"$WORK/corrupt/train_000000.bin"
expect_error "$WORK/corrupt/train_000000.bin" "${common[@]}" --set="data.train_shards=$WORK/corrupt/train_*.bin" --run_dir="$WORK/bad4"
expect_error "$WORK/nothing_*.bin" "${common[@]}" --set="data.train_shards=$WORK/nothing_*.bin" --run_dir="$WORK/bad5"
# A world the launcher did not really start (OMPI variables without mpirun) is refused: MPI sees
# one process where the environment claims two.
rc=0; out=$(OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 "$TRAIN" "${common[@]}" --run_dir="$WORK/bad6" 2>&1) || rc=$?
[[ $rc -ne 0 ]] && grep -q "rank 0 of 2" <<<"$out" || fail "multi-rank launch was not refused: $out"
echo "train smoke test: OK"
