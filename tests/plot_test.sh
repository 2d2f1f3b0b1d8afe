#!/usr/bin/env bash
# Loss curves: `train --set=logging.plot=true` draws run_dir/curves.png at the end, `plot` draws
# several runs into one PNG (LRA runs get the accuracy panel), and bad input is refused clearly.
# The PNGs are opened with PIL (a real client) and must have the figure's size.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
TRAIN="$RUNFILES/launch/train"
PLOT="$RUNFILES/tools/plot"
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }

"$RUNFILES/tools/tokenize" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >/dev/null 2>&1 || fail tokenize
common=(--config="$RUNFILES/launch/configs/lm/tiny.textproto" --set=data.tokenizer=byte
  --set=model.vocab_size=257 --set="data.train_shards=$WORK/shards/train_*.bin"
  --set="data.val_shards=$WORK/shards/val_*.bin" --set=model.d_model=32 --set=model.num_layers=2
  --set=model.mixer.num_heads=2 --set=train.seq_len=32 --set=train.global_batch_size=4
  --set=train.micro_batch_size=4 --set=train.max_steps=6 --set=train.log_every=2
  --set=train.eval_every=3 --set=train.eval_batches=2 --set=train.num_threads=1
  --set=logging.progress=plain)
"$TRAIN" "${common[@]}" --set=logging.plot=true --run_dir="$WORK/a" >"$WORK/a.log" 2>&1 \
  || { cat "$WORK/a.log"; fail "train a"; }
grep -q "curves: $WORK/a/curves.png" "$WORK/a.log" || { cat "$WORK/a.log"; fail "train did not report its curves"; }
grep -q "checkpoints: " "$WORK/a.log" || fail "no checkpoint line in the final summary"
"$TRAIN" "${common[@]}" --set=optimizer.lr=1e-3 --run_dir="$WORK/b" >/dev/null 2>&1 || fail "train b"
"$PLOT" "$WORK/a" "$WORK/b" --out="$WORK/ab.png" --x=tokens || fail "plot two runs"
python3 - "$WORK/a/curves.png" "$WORK/ab.png" <<'PY' || fail "PNG files"
import sys
from PIL import Image
for p in sys.argv[1:]:
    im = Image.open(p)
    im.load()
    assert im.format == "PNG" and im.size == (770, 495), (p, im.format, im.size)
print("curves.png and a two-run plot open as PNG")
PY
rc=0; out=$("$PLOT" "$WORK/a" "$WORK/missing" --out="$WORK/x.png" 2>&1) || rc=$?
[[ $rc == 1 ]] && grep -q "$WORK/missing has no metrics.jsonl" <<<"$out" || fail "missing run: $rc $out"
rc=0; "$PLOT" --out="$WORK/x.png" >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "no runs should be a usage error ($rc)"
rc=0; out=$("$PLOT" "$WORK/a" --out="$WORK/x.png" --x=epochs 2>&1) || rc=$?
[[ $rc == 2 ]] && grep -q "epochs" <<<"$out" || fail "bad --x: $rc $out"
echo OK
