#!/usr/bin/env bash
# Long Range Arena through the real `train` binary, on small data written here in the official
# release formats (ListOps TSV, CIFAR-10 binary for the image task, AAN TSV for retrieval):
#  1. classification from scratch (Transformer on ListOps; SGConv on the image task; S4 on
#     retrieval with the two-document head): finite losses, val/test accuracy in metrics.jsonl;
#  2. self-pretraining then finetuning: masked denoising (bidirectional S4 on ListOps; 2-channel
#     pixel masking with SGConv on the image task) and causal next-token (S4), then a
#     classification run that starts from the pretrained backbone (task.lra.init_from) - the
#     backbone tensors equal the pretrained ones at step 0, the pixel mask column dropped;
#  3. exact resume (crash before DONE, restart, bitwise) and 2 MPI ranks = 1 rank (float64).
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
source "$RUNFILES/tests/mpi_common.sh"
TRAIN="$RUNFILES/launch/train"
CONFIGS="$RUNFILES/launch/configs/lra"
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 - "$WORK" <<'PY'
import os, random, struct, sys
work = sys.argv[1]
rng = random.Random(7)
# ListOps: small random expressions, labels by evaluation (format: header, Source<TAB>Target, CRLF).
OPS = ["[MAX", "[MIN", "[MED", "[SM"]
def gen(depth):
    if depth > 2 or rng.random() < 0.4:
        v = rng.randrange(10)
        return str(v), v
    op = rng.choice(OPS)
    args = [gen(depth + 1) for _ in range(rng.randrange(2, 4))]
    vals = [a[1] for a in args]
    s = op
    for a in args:
        s = f"( {s} {a[0]} )"
    s = f"( {s} ] )"
    if op == "[MAX": v = max(vals)
    elif op == "[MIN": v = min(vals)
    elif op == "[MED": v = int(sorted(vals)[len(vals) // 2] if len(vals) % 2 else (sorted(vals)[len(vals)//2 - 1] + sorted(vals)[len(vals)//2]) / 2)
    else: v = sum(vals) % 10
    return s, v
d = f"{work}/listops"
os.makedirs(d)
for split, n in (("train", 256), ("val", 48), ("test", 48)):
    with open(f"{d}/basic_{split}.tsv", "w", newline="") as f:
        f.write("Source\tTarget\r\n")
        for _ in range(n):
            s, v = gen(1)
            f.write(f"{s}\t{v}\r\n")
# Image task: CIFAR-10 binary layout, label = whether the upper half is brighter.
d = f"{work}/cifar"
os.makedirs(d)
def record():
    label = rng.randrange(2)
    img = bytearray(1024)
    for i in range(1024):
        top = i < 512
        base = 170 if (top == (label == 1)) else 80
        img[i] = max(0, min(255, base + rng.randrange(-60, 61)))
    return bytes([label]) + bytes(img) * 3
for name, n in [(f"data_batch_{i}.bin", 40) for i in range(1, 6)] + [("test_batch.bin", 40)]:
    with open(f"{d}/{name}", "wb") as f:
        for _ in range(n):
            f.write(record())
# Retrieval: AAN TSV (no header; label id1 id2 text1 text2), label 1 = same "topic" letter.
d = f"{work}/aan"
os.makedirs(d)
def doc(topic):
    return " ".join(rng.choice([topic * 3, topic + "x", "the", "of"]) for _ in range(rng.randrange(8, 20)))
for split, n in (("train", 128), ("eval", 32), ("test", 32)):
    with open(f"{d}/new_aan_pairs.{split}.tsv", "w") as f:
        for i in range(n):
            a = rng.choice("abcdef"); same = rng.randrange(2)
            b = a if same else rng.choice([c for c in "abcdef" if c != a])
            f.write(f"{float(same)}\tp{i}a\tp{i}b\t{doc(a)}\t{doc(b)}\n")
PY

small=(--set=train.num_threads=1 --set=logging.progress=plain --set=train.log_every=1
  --set=train.eval_batches=0 --set=train.eval_batch_size=16 --set=checkpoint.every_steps=4)
listops=(--set=task.lra.data_dir="$WORK/listops" --set=train.seq_len=128
  --set=train.global_batch_size=8 --set=train.micro_batch_size=4 --set=train.max_steps=12
  --set=train.eval_every=6 --set=model.d_model=32 --set=model.num_layers=2)

check_metrics() {  # check_metrics RUN_DIR: accuracies logged, losses finite
  python3 - "$1" <<'PY' || fail "metrics of $1"
import json, math, sys
recs = [json.loads(l) for l in open(f"{sys.argv[1]}/metrics.jsonl")]
train = [r for r in recs if "loss" in r]
evals = [r for r in recs if "val_accuracy" in r]
assert train and all(math.isfinite(r["loss"]) for r in train), train[:3]
assert evals and 0 <= evals[-1]["val_accuracy"] <= 1 and 0 <= evals[-1]["test_accuracy"] <= 1, evals
print(f"{sys.argv[1].split('/')[-1]}: loss {train[0]['loss']:.3f} -> {train[-1]['loss']:.3f}, "
      f"val acc {evals[-1]['val_accuracy']:.3f}, test acc {evals[-1]['test_accuracy']:.3f}")
PY
}

# 1. From scratch.
"$TRAIN" --config="$CONFIGS/transformer_listops_scratch.textproto" "${small[@]}" "${listops[@]}" \
  --set=model.mixer.num_heads=2 --set=model.ffn.hidden_dim=64 --run_dir="$WORK/tf_listops" \
  >"$WORK/tf_listops.log" 2>&1 || { cat "$WORK/tf_listops.log"; fail "transformer listops"; }
check_metrics "$WORK/tf_listops"
grep -q "LRA listops (classification)" "$WORK/tf_listops.log" || fail "no task summary line"
image=(--set=task.lra.data_dir="$WORK/cifar" --set=train.seq_len=1024 --set=train.global_batch_size=8
  --set=train.micro_batch_size=8 --set=train.max_steps=8 --set=train.eval_every=4
  --set=model.d_model=16 --set=model.num_layers=2 --set=model.mixer.sgconv.kernel_dim=8)
"$TRAIN" --config="$CONFIGS/sgconv_image_scratch.textproto" "${small[@]}" "${image[@]}" \
  --run_dir="$WORK/sg_image" >"$WORK/sg_image.log" 2>&1 || { cat "$WORK/sg_image.log"; fail "sgconv image"; }
check_metrics "$WORK/sg_image"
aan=(--set=task.lra.data_dir="$WORK/aan" --set=train.seq_len=128 --set=train.global_batch_size=8
  --set=train.micro_batch_size=8 --set=train.max_steps=8 --set=train.eval_every=4
  --set=model.d_model=16 --set=model.num_layers=2 --set=model.mixer.s4.d_state=8)
"$TRAIN" --config="$CONFIGS/s4_retrieval_scratch.textproto" "${small[@]}" "${aan[@]}" \
  --run_dir="$WORK/s4_aan" >"$WORK/s4_aan.log" 2>&1 || { cat "$WORK/s4_aan.log"; fail "s4 retrieval"; }
check_metrics "$WORK/s4_aan"

# 2. Self-pretraining, then finetuning from it.
s4small=(--set=model.mixer.s4.d_state=8)
"$TRAIN" --config="$CONFIGS/s4_listops_spt_pretrain.textproto" "${small[@]}" "${listops[@]}" \
  "${s4small[@]}" --run_dir="$WORK/s4_pt" >"$WORK/s4_pt.log" 2>&1 || { cat "$WORK/s4_pt.log"; fail "s4 spt"; }
check_metrics "$WORK/s4_pt"
grep -q "masked denoising at 10%" "$WORK/s4_pt.log" || fail "masked SPT not announced"
"$TRAIN" --config="$CONFIGS/s4_listops_spt_finetune.textproto" "${small[@]}" "${listops[@]}" \
  "${s4small[@]}" --set=task.lra.init_from="$WORK/s4_pt" --set=train.max_steps=4 \
  --run_dir="$WORK/s4_ft" >"$WORK/s4_ft.log" 2>&1 || { cat "$WORK/s4_ft.log"; fail "s4 finetune"; }
check_metrics "$WORK/s4_ft"
# Causal next-token SPT (a causal S4).
"$TRAIN" --config="$CONFIGS/s4_listops_spt_pretrain.textproto" "${small[@]}" "${listops[@]}" \
  "${s4small[@]}" --set=model.bidirectional=false --run_dir="$WORK/s4_causal" \
  >"$WORK/s4_causal.log" 2>&1 || { cat "$WORK/s4_causal.log"; fail "causal spt"; }
grep -q "self-pretraining, next element" "$WORK/s4_causal.log" || fail "causal SPT not announced"
# Pixel masking: 2 input channels in pretraining, 1 in finetuning.
"$TRAIN" --config="$CONFIGS/sgconv_image_spt_pretrain.textproto" "${small[@]}" "${image[@]}" \
  --run_dir="$WORK/sg_pt" >"$WORK/sg_pt.log" 2>&1 || { cat "$WORK/sg_pt.log"; fail "sgconv spt"; }
"$TRAIN" --config="$CONFIGS/sgconv_image_spt_finetune.textproto" "${small[@]}" "${image[@]}" \
  --set=task.lra.init_from="$WORK/sg_pt" --set=train.max_steps=4 --set=checkpoint.every_steps=1 \
  --set=checkpoint.keep_last=10 \
  --run_dir="$WORK/sg_ft" >"$WORK/sg_ft.log" 2>&1 || { cat "$WORK/sg_ft.log"; fail "sgconv finetune"; }
python3 - "$WORK" <<'PY' || fail "finetuning did not start from the pretrained backbone"
import sys
import numpy as np
from safetensors.numpy import load_file
w = sys.argv[1]
pt = load_file(f"{w}/sg_pt/model.safetensors")
ft1 = load_file(f"{w}/sg_ft/checkpoints/step_00000001/model.safetensors")
assert pt["input_proj.weight"].shape[1] == 2 and ft1["input_proj.weight"].shape[1] == 1
assert "pixel_head.weight" in pt and "classifier.weight" in ft1 and "pixel_head.weight" not in ft1
# After one finetuning step the backbone is within one AdamW step (lr 0.01) of the pretrained one.
for k, v in ft1.items():
    if k.startswith("blocks.") and k in pt and v.shape == pt[k].shape:
        assert np.max(np.abs(v - pt[k])) < 0.05, k
print("finetune starts from the pretrained backbone (mask column dropped)")
PY

# 3. Exact resume and data parallel.
ref=("$TRAIN" --config="$CONFIGS/transformer_listops_scratch.textproto" "${small[@]}" "${listops[@]}"
  --set=model.mixer.num_heads=2 --set=model.ffn.hidden_dim=64)
rc=0
LOOM_TEST_CRASH_BEFORE_DONE=8 "${ref[@]}" --run_dir="$WORK/crash" >"$WORK/crash.log" 2>&1 || rc=$?
[[ $rc == 3 ]] || { cat "$WORK/crash.log"; fail "fault injection did not fire ($rc)"; }
"${ref[@]}" --run_dir="$WORK/crash" >"$WORK/resume.log" 2>&1 || { cat "$WORK/resume.log"; fail resume; }
python3 - "$WORK/tf_listops" "$WORK/crash" <<'PY' || fail "resumed LRA run differs"
import json, sys
from safetensors.numpy import load_file
a, b = sys.argv[1:]
def recs(d):
    return {(("eval" if "val_loss" in r else "train"), r["step"]): {k: r[k] for k in ("loss", "val_loss", "val_accuracy", "test_accuracy") if k in r}
            for r in map(json.loads, open(f"{d}/metrics.jsonl")) if "event" not in r}
assert recs(a) == recs(b)
wa, wb = load_file(f"{a}/model.safetensors"), load_file(f"{b}/model.safetensors")
assert all(wa[k].tobytes() == wb[k].tobytes() for k in wa)
print("LRA resume: bitwise")
PY
f64=("${ref[@]}" --set=model.dtype=float64 --set=train.max_steps=4)
"${f64[@]}" --run_dir="$WORK/r1" >"$WORK/r1.log" 2>&1 || { cat "$WORK/r1.log"; fail "1 rank"; }
loom_mpirun -np 2 "${f64[@]}" --run_dir="$WORK/r2" >"$WORK/r2.log" 2>&1 || { cat "$WORK/r2.log"; fail "2 ranks"; }
python3 - "$WORK/r1" "$WORK/r2" <<'PY' || fail "2 ranks differ from 1 rank"
import json, sys
import numpy as np
from safetensors.numpy import load_file
a, b = sys.argv[1:]
la = {r["step"]: r["loss"] for r in map(json.loads, open(f"{a}/metrics.jsonl")) if "loss" in r}
lb = {r["step"]: r["loss"] for r in map(json.loads, open(f"{b}/metrics.jsonl")) if "loss" in r}
assert la.keys() == lb.keys() and len(la) == 4
worst = max(abs(la[s] - lb[s]) / abs(la[s]) for s in la)
wa, wb = load_file(f"{a}/model.safetensors"), load_file(f"{b}/model.safetensors")
ww = max(float(np.max(np.abs(wa[k] - wb[k]))) for k in wa)
assert worst < 1e-12 and ww < 1e-10, (worst, ww)
print(f"LRA, 2 ranks vs 1 rank (float64): losses {worst:.1e}, weights {ww:.1e}")
PY
echo OK
