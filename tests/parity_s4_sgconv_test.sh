#!/usr/bin/env bash
# `parity` passes every S4/S4D/SGConv golden case at 1e-9 (the shared ones and Loom's extra cases
# with other seeds, sizes and lengths that are not powers of two), and fails a case whose
# reference gradient was perturbed by 1e-7 relative (rewritten with the real `safetensors`
# Python package), naming the tensor.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}"
PARITY="$RUNFILES/loom/tools/parity"
GOLDEN="$RUNFILES/loom_shared/golden/s4_sgconv"
EXTRA="$RUNFILES/loom/tests/golden_s4_extra"
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")

for dir in "$GOLDEN" "$EXTRA"; do
  out=$("$PARITY" --cases="$dir")
  echo "$out"
  n=$(ls "$dir"/*.safetensors | wc -l)
  [[ $n -ge 5 ]] || { echo "FAIL: only $n golden cases found in $dir"; exit 1; }
  tail -1 <<<"$out" | grep -qx "$n passed, 0 failed" || { echo "FAIL: expected '$n passed, 0 failed'"; exit 1; }
done

python3 - "$GOLDEN/s4_legs_causal.safetensors" "$WORK/perturbed.safetensors" <<'PY'
import sys
from safetensors import safe_open
from safetensors.numpy import save_file
with safe_open(sys.argv[1], "np") as f:
    meta = f.metadata()
    tensors = {k: f.get_tensor(k) for k in f.keys()}
t = tensors["grad.param.layer.kernel.A_real"].copy()
t.flat[3] += 1e-7 * abs(t).max()
tensors["grad.param.layer.kernel.A_real"] = t
save_file(tensors, sys.argv[2], metadata=meta)
PY
rc=0; out=$("$PARITY" --cases="$WORK/perturbed.safetensors") || rc=$?
echo "$out"
[[ $rc -ne 0 ]] || { echo "FAIL: parity passed a perturbed case"; exit 1; }
grep -q "grad.param.layer.kernel.A_real" <<<"$out" || { echo "FAIL: the failing tensor is not named"; exit 1; }
tail -1 <<<"$out" | grep -qx "0 passed, 1 failed" || { echo "FAIL: wrong summary"; exit 1; }
echo OK
