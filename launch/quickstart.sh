#!/usr/bin/env bash
# Loom quickstart: setup (if needed), build, tokenize the bundled corpus, train the tiny LM.
#
#   launch/quickstart.sh [--config=FILE] [--set=a.b.c=value]...   # extra arguments go to `train`
#
# Trains launch/configs/lm/tiny_lowrank_sgt.textproto (4 layers, d=128, GPT-2 vocabulary, LowRank
# FFNs with self-guided training) on CPU, printing train/val loss and perplexity and tokens/s;
# the run directory is printed at the end. --config=launch/configs/lm/tiny.textproto trains the
# dense baseline instead. Takes a few minutes on a 2-core machine once built.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! launch/setup.sh --check >/dev/null 2>&1; then
  echo "quickstart: installing dependencies (launch/setup.sh)..."
  launch/setup.sh
fi

echo "quickstart: building //launch:train and //tools:tokenize (first build takes a few minutes)..."
mkdir -p runs
if ! bazel build --noshow_progress //launch:train //tools:tokenize >runs/quickstart_build.log 2>&1; then
  grep -E "ERROR|error" runs/quickstart_build.log | head -20 >&2
  echo "quickstart: build failed; full log in runs/quickstart_build.log" >&2
  exit 1
fi

shards=runs/data/tiny_gpt2
if [[ ! -f "$shards/train_000000.bin" ]]; then
  echo "quickstart: tokenizing the bundled corpus (data/corpus) with the GPT-2 BPE..."
  bazel-bin/tools/tokenize --tokenizer=gpt2 --input='data/corpus/*.txt' --out_dir="$shards" \
    --val_fraction=0.02
fi

config=launch/configs/lm/tiny_lowrank_sgt.textproto
args=()
for a in "$@"; do
  if [[ "$a" == --config=* ]]; then config="${a#--config=}"; else args+=("$a"); fi
done
name=$(basename "$config" .textproto)
run_dir="runs/$name-$(date +%Y%m%d-%H%M%S)"
echo "quickstart: training $config (run directory $run_dir)..."
bazel-bin/launch/train --config="$config" --run_dir="$run_dir" "${args[@]}"
echo "quickstart: metrics in $run_dir/metrics.jsonl, resolved config in $run_dir/config.textproto"
