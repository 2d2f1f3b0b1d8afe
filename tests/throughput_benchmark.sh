#!/usr/bin/env bash
# Throughput race: Loom's `train` against an equivalent eager PyTorch training loop, same models,
# data, steps, threads and optimizer (tests/throughput_benchmark.py does the work).
#
#   bazel run -c opt //tests:throughput_benchmark -- [--steps=N] [--threads=T]
#       [--models=small,small_lowrank_sgt,large] [--keep_work] [--json_out=FILE]
#
# python3 on PATH must have torch (the pinned wheel LibTorch comes from). Takes minutes with the
# default steps; do not run it while other work loads the cores (the script prints the load).
set -euo pipefail

if [[ -n "${RUNFILES_DIR:-}" && -d "$RUNFILES_DIR/loom" ]]; then
  RUNFILES="$RUNFILES_DIR/loom"
elif [[ -d "$0.runfiles/loom" ]]; then
  RUNFILES="$0.runfiles/loom"
  export RUNFILES_DIR="$0.runfiles"
else
  RUNFILES="${TEST_SRCDIR:?cannot find the runfiles}/loom"
fi

exec python3 "$RUNFILES/tests/throughput_benchmark.py" \
  --train="$RUNFILES/launch/train" \
  --tokenize="$RUNFILES/tools/tokenize" \
  --config_dir="$RUNFILES/launch/configs/lm" \
  --corpus_dir="$RUNFILES/data/corpus" \
  "$@"
