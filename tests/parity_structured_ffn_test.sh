#!/usr/bin/env bash
# `parity` passes every StructuredFFN golden case at 1e-10, and fails a case whose reference
# output was perturbed by 1e-8 (rewritten with the real `safetensors` Python package).
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}"
PARITY="$RUNFILES/loom/tools/parity"
GOLDEN="$RUNFILES/loom_shared/golden/structured_ffn"
# Fresh even if Bazel reuses TEST_TMPDIR between runs (old run dirs would be resumed).
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")

out=$("$PARITY" --cases="$GOLDEN")
echo "$out"
n=$(ls "$GOLDEN"/*.safetensors | wc -l)
[[ $n -ge 30 ]] || { echo "FAIL: only $n golden cases found"; exit 1; }
tail -1 <<<"$out" | grep -qx "$n passed, 0 failed" || { echo "FAIL: expected '$n passed, 0 failed'"; exit 1; }

python3 - "$GOLDEN/sgt_blockshuffle_a0p3087.safetensors" "$WORK/perturbed.safetensors" <<'PY'
import sys
from safetensors import safe_open
from safetensors.numpy import save_file
with safe_open(sys.argv[1], "np") as f:
    meta = f.metadata()
    tensors = {k: f.get_tensor(k) for k in f.keys()}
tensors["grad.param.blkdiag2"] = tensors["grad.param.blkdiag2"].copy()
tensors["grad.param.blkdiag2"].flat[7] += 1e-8
save_file(tensors, sys.argv[2], metadata=meta)
PY
rc=0; out=$("$PARITY" --cases="$WORK/perturbed.safetensors") || rc=$?
echo "$out"
[[ $rc -ne 0 ]] || { echo "FAIL: parity passed a perturbed case"; exit 1; }
grep -q "grad.param.blkdiag2" <<<"$out" || { echo "FAIL: the failing tensor is not named"; exit 1; }
tail -1 <<<"$out" | grep -qx "0 passed, 1 failed" || { echo "FAIL: wrong summary"; exit 1; }
echo OK
