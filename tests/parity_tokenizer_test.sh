#!/usr/bin/env bash
# `parity --cases=<golden tokenizer dir>` passes every case and ends with "N passed, 0 failed";
# a case file with a wrong id makes it fail (exit non-zero) and say so.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}"
PARITY="$RUNFILES/loom/tools/parity"
GOLDEN="$RUNFILES/loom_shared/golden/tokenizer"
# Fresh even if Bazel reuses TEST_TMPDIR between runs (old run dirs would be resumed).
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
export LOOM_VOCAB_DIR="$RUNFILES/loom/data/tokenizers/gpt2"

out=$("$PARITY" --cases="$GOLDEN")
echo "$out"
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["cases"]))' "$GOLDEN/gpt2_cases.json")
tail -1 <<<"$out" | grep -qx "$n passed, 0 failed" || { echo "FAIL: expected '$n passed, 0 failed'"; exit 1; }

python3 - "$GOLDEN/gpt2_cases.json" "$WORK/broken.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["cases"] = d["cases"][:3]
d["cases"][1]["ids"][0] += 1
json.dump(d, open(sys.argv[2], "w"))
PY
rc=0; out=$("$PARITY" --cases="$WORK/broken.json") || rc=$?
echo "$out"
[[ $rc -ne 0 ]] || { echo "FAIL: parity passed a broken case"; exit 1; }
tail -1 <<<"$out" | grep -qx "2 passed, 1 failed" || { echo "FAIL: wrong summary"; exit 1; }
echo OK
