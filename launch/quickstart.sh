#!/usr/bin/env bash
# Loom quickstart: setup (if needed), build, tokenize the bundled corpus, train the tiny LM.
#
#   launch/quickstart.sh [--set=a.b.c=value]...     # extra overrides go to `train`
#
# Trains launch/configs/lm/tiny.textproto (4 layers, d=128, GPT-2 vocabulary) on CPU for 300
# steps, printing train/val loss and perplexity and tokens/s; the run directory is printed at the
# end. Takes a few minutes on a 2-core machine once built.
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

run_dir="runs/tiny-$(date +%Y%m%d-%H%M%S)"
echo "quickstart: training (run directory $run_dir)..."
bazel-bin/launch/train --config=launch/configs/lm/tiny.textproto --run_dir="$run_dir" "$@"
echo "quickstart: metrics in $run_dir/metrics.jsonl, resolved config in $run_dir/config.textproto"
