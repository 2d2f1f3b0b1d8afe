#!/usr/bin/env bash
# Loom's TensorBoard event files read back by the real client: //core:tensorboard_demo writes a
# run and a "resumed" run into one directory, then the pinned `tensorboard` Python package
# (EventFileLoader per file, EventAccumulator over the directory) must see every scalar at its
# step with its float32 value and every histogram with the right num/sum/min/max and buckets.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
DEMO="$RUNFILES/core/tensorboard_demo"
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }

"$DEMO" --out_dir="$WORK/tb" >"$WORK/paths.txt" || fail "tensorboard_demo"
"$DEMO" >/dev/null 2>&1 && fail "tensorboard_demo without --out_dir succeeded"

python3 - "$WORK/tb" "$WORK/paths.txt" <<'PY' || fail "event files as read by tensorboard"
import glob, os, re, socket, struct, sys
import numpy as np
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

tb_dir, paths_txt = sys.argv[1:]
paths = open(paths_txt).read().split()
assert len(paths) == 2, paths
assert sorted(glob.glob(os.path.join(tb_dir, "*"))) == paths, (paths, os.listdir(tb_dir))
host = socket.gethostname()
for i, p in enumerate(paths):
    name = os.path.basename(p)
    m = re.fullmatch(r"events\.out\.tfevents\.(\d+)\.(.+)\.(\d+)\.loom(\.\d{3})?", name)
    assert m and m.group(2) == host, name
    assert (m.group(4) is not None) == (i == 1 and paths[0].split(".loom")[0] == p.split(".loom")[0]), name

    # TFRecord framing, checked here record by record with tensorboard's own masked CRC.
    raw = open(p, "rb").read()
    pos, n = 0, 0
    while pos < len(raw):
        (length,) = struct.unpack_from("<Q", raw, pos)
        (hcrc,) = struct.unpack_from("<I", raw, pos + 8)
        assert hcrc == masked_crc32c(raw[pos:pos + 8]), (name, pos)
        data = raw[pos + 12:pos + 12 + length]
        (dcrc,) = struct.unpack_from("<I", raw, pos + 12 + length)
        assert dcrc == masked_crc32c(data), (name, pos)
        pos += 16 + length
        n += 1
    assert pos == len(raw)

    events = list(event_file_loader.EventFileLoader(p).Load())
    assert len(events) == n, (len(events), n)
    assert events[0].file_version == "brain.Event:2", events[0]
    assert all(e.wall_time > 1.6e9 for e in events)
    assert n == (1 + 20 + 1 if i == 0 else 1 + 5 + 1), (name, n)

acc = EventAccumulator(tb_dir, size_guidance={"scalars": 0, "histograms": 0})
acc.Reload()
tags = acc.Tags()
assert sorted(tags["scalars"]) == ["train/loss", "train/lr"], tags
assert tags["histograms"] == ["weights/fc1"], tags

loss = acc.Scalars("train/loss")
assert [e.step for e in loss] == list(range(15)), [e.step for e in loss]
for e in loss:
    assert e.value == float(np.float32(2.0 / (e.step + 1))), (e.step, e.value)
lr = acc.Scalars("train/lr")
assert [e.step for e in lr] == list(range(10))
for e in lr:
    assert e.value == float(np.float32(1e-3 * e.step)), (e.step, e.value)

# TensorFlow's default bucket edges and its "first edge > v" rule, recomputed here.
pos_edges = []
v = 1e-12
while v < 1e20:
    pos_edges.append(v)
    v *= 1.1
pos_edges.append(sys.float_info.max)
edges = np.array([-x for x in reversed(pos_edges)] + [0.0] + pos_edges)
assert len(edges) == 1551

hists = acc.Histograms("weights/fc1")
assert [h.step for h in hists] == [5, 12], [h.step for h in hists]
expected = {
    5: np.array([(i - 500) / 100.0 for i in range(1000)], dtype=np.float32).astype(np.float64),
    12: np.array([i * i / 1000.0 for i in range(100)], dtype=np.float32).astype(np.float64),
}
for h in hists:
    x = expected[h.step]
    hv = h.histogram_value
    assert hv.num == len(x), (h.step, hv.num)
    assert hv.min == x.min() and hv.max == x.max(), (h.step, hv.min, hv.max)
    assert abs(hv.sum - x.sum()) <= 1e-9 * max(1, abs(x).sum()), (h.step, hv.sum, x.sum())
    assert abs(hv.sum_squares - (x * x).sum()) <= 1e-9 * (x * x).sum(), h.step
    assert len(hv.bucket) == len(hv.bucket_limit)
    assert sum(hv.bucket) == len(x)
    assert hv.bucket_limit[-1] == sys.float_info.max
    idx = np.searchsorted(edges, x, side="right")  # first edge > v
    want = {}
    for b in idx:
        want[edges[b]] = want.get(edges[b], 0) + 1
    got = {lim: c for lim, c in zip(hv.bucket_limit, hv.bucket) if c > 0}
    assert got == want, (h.step, got, want)
    # Empty runs are collapsed: no two empty buckets in a row.
    assert not any(a == 0 and b == 0 for a, b in zip(hv.bucket, hv.bucket[1:]))
print(f"tensorboard {__import__('tensorboard').__version__}: 2 files, 25 scalars, 2 histograms read back")
PY
echo PASS
# The real `train`: every metrics.jsonl scalar is in the run directory's event file at its step
# with its float32 value, and the weight histograms are there (one per parameter at each eval).
TRAIN="$RUNFILES/launch/train"
"$RUNFILES/tools/tokenize" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >/dev/null 2>&1 || fail tokenize
"$TRAIN" --config="$RUNFILES/launch/configs/lm/tiny_lowrank_sgt.textproto" \
  --set=data.tokenizer=byte --set=model.vocab_size=257 \
  --set="data.train_shards=$WORK/shards/train_*.bin" --set="data.val_shards=$WORK/shards/val_*.bin" \
  --set=model.d_model=32 --set=model.num_layers=2 --set=model.mixer.num_heads=2 --set=model.ffn.rank=8 \
  --set=train.seq_len=32 --set=train.global_batch_size=4 --set=train.micro_batch_size=4 \
  --set=train.max_steps=8 --set=train.log_every=2 --set=train.eval_every=4 --set=train.eval_batches=2 \
  --set=train.num_threads=1 --set=logging.progress=none --run_dir="$WORK/run" >"$WORK/train.log" 2>&1 \
  || { cat "$WORK/train.log"; fail "train"; }
python3 - "$WORK/run" <<'PY' || fail "train's event file"
import json, sys
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
run = sys.argv[1]
acc = EventAccumulator(run, size_guidance={"scalars": 0, "histograms": 0})
acc.Reload()
tags = set(acc.Tags()["scalars"])
want = {"train/loss": "loss", "train/lr": "lr", "train/grad_norm": "grad_norm",
        "train/alpha": "alpha", "perf/tokens_per_s": "tokens_per_s", "perf/mfu": "mfu",
        "val/loss": "val_loss", "val/ppl": "val_ppl"}
assert set(want) <= tags, (want.keys() - tags)
checked = 0
for rec in map(json.loads, open(f"{run}/metrics.jsonl")):
    for tag, key in want.items():
        if key in rec and rec[key] is not None:
            events = {e.step: e.value for e in acc.Scalars(tag)}
            assert rec["step"] in events, (tag, rec["step"], sorted(events))
            assert events[rec["step"]] == np.float32(rec[key]), (tag, rec["step"], events[rec["step"]], rec[key])
            checked += 1
hist_tags = acc.Tags()["histograms"]
assert "weights/embedding.weight" in hist_tags, hist_tags[:5]
steps = [h.step for h in acc.Histograms("weights/embedding.weight")]
assert steps == [4, 8], steps
print(f"train: {checked} scalars and {len(hist_tags)} weight histograms found in the event file")
PY
echo OK
