#!/usr/bin/env bash
# Runs the checkpoint-reader fuzzer for a bounded time from the seed corpus (a real manifest and
# safetensors files, each prefixed with the reader-selecting byte). Any crash or sanitizer
# report makes libFuzzer exit non-zero.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
# Fresh even if Bazel reuses TEST_TMPDIR between runs (old run dirs would be resumed).
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
mkdir -p "$WORK/corpus"
cp "$RUNFILES"/core/testdata/fuzz_seeds/* "$WORK/corpus/"
"$RUNFILES/core/checkpoint_fuzzer" -max_total_time="${LOOM_FUZZ_SECONDS:-30}" -rss_limit_mb=2048 \
  -max_len=65536 -print_final_stats=1 "$WORK/corpus" 2>&1 | tail -15
