#!/usr/bin/env bash
# The `ckpt` CLI on checkpoints of real runs, and a Python client (pinned torch + safetensors)
# that rebuilds Loom's forward pass in PyTorch from model.safetensors and gets Loom's logits.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
source "$RUNFILES/tests/mpi_common.sh"
TRAIN="$RUNFILES/launch/train"
TOKENIZE="$RUNFILES/tools/tokenize"
CKPT="$RUNFILES/tools/ckpt"
CONFIGS="$RUNFILES/launch/configs/lm"
# Fresh even if Bazel reuses TEST_TMPDIR between runs (old run dirs would be resumed).
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }

"$TOKENIZE" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >/dev/null 2>&1 || fail tokenize
common=(--set=data.tokenizer=byte --set=model.vocab_size=257 --set=model.dtype=float64
  --set="data.train_shards=$WORK/shards/train_*.bin" --set="data.val_shards=$WORK/shards/val_*.bin"
  --set=model.d_model=32 --set=model.num_layers=2 --set=model.mixer.num_heads=2
  --set=train.seq_len=32 --set=train.global_batch_size=4 --set=train.micro_batch_size=2
  --set=train.max_steps=6 --set=train.eval_every=0 --set=train.eval_batches=1
  --set=train.num_threads=1 --set=logging.progress=none --set=checkpoint.every_steps=3)
"$TRAIN" --config="$CONFIGS/tiny.textproto" "${common[@]}" --run_dir="$WORK/dense" >/dev/null 2>&1 || fail "dense run"
"$TRAIN" --config="$CONFIGS/tiny_lowrank_sgt.textproto" "${common[@]}" --set=model.ffn.rank=8 \
  --run_dir="$WORK/lowrank" >/dev/null 2>&1 || fail "lowrank run"
loom_mpirun -np 2 "$TRAIN" --config="$CONFIGS/tiny.textproto" "${common[@]}" \
  --run_dir="$WORK/two" >/dev/null 2>&1 || fail "2-rank run"
S3="$WORK/dense/checkpoints/step_00000003"
S6="$WORK/dense/checkpoints/step_00000006"

# info / tensors / diff, text and JSON.
"$CKPT" info "$WORK/dense" | tee "$WORK/info.txt" | head -3
grep -q "step 6" "$WORK/info.txt" || fail "info does not pick the newest checkpoint"
"$CKPT" info "$S3" --json >"$WORK/info.json"
"$CKPT" tensors "$S6" --filter='blocks.0.mixer.*' --json >"$WORK/tensors.json"
"$CKPT" tensors "$S6" --filter='embedding.*'
"$CKPT" diff "$S6" "$S6" --json >"$WORK/diff_same.json"
"$CKPT" diff "$S3" "$S6" --json >"$WORK/diff.json"
"$CKPT" diff "$S3" "$S6" | tail -1
python3 - "$WORK" "$S6" <<'PY' || fail "ckpt JSON output"
import json, sys, numpy as np
from safetensors.numpy import load_file
work, s6 = sys.argv[1:]
info = json.load(open(f"{work}/info.json"))
assert info["step"] == 3 and info["tokens"] == 3 * 4 * 32 and info["world_size"] == 1, info
assert {f["name"] for f in info["files"]} == {"model.safetensors", "optimizer.safetensors", "rank_00000.safetensors"}
assert info["train_flops"] > 0 and info["parameters"] > 0
rows = json.load(open(f"{work}/tensors.json"))
w = load_file(f"{s6}/model.safetensors")
assert {r["name"] for r in rows} == {k for k in w if k.startswith("blocks.0.mixer.")}, rows
for r in rows:
    x = w[r["name"]].astype(np.float64)
    assert abs(r["norm"] - np.linalg.norm(x)) <= 1e-9 * max(1, np.linalg.norm(x)), r
    assert r["min"] == x.min() and r["max"] == x.max() and list(x.shape) == r["shape"]
same = json.load(open(f"{work}/diff_same.json"))
assert same["max_rel"] == 0 and not same["only_in_a"] and not same["only_in_b"]
d = json.load(open(f"{work}/diff.json"))
assert d["max_rel"] > 0 and len(d["tensors"]) == len(w)
print("ckpt info/tensors/diff JSON: checked against numpy")
PY

# verify, and every kind of damage refused with the file named.
"$CKPT" verify "$WORK/two" || fail "verify of an intact 2-rank checkpoint"
damage() {  # damage NAME python-snippet-on-path expected-message
  local name=$1 code=$2 expect=$3
  rm -rf "$WORK/bad_$name"; cp -r "$WORK/two/checkpoints/step_00000006" "$WORK/bad_$name"
  python3 -c "import os, sys; d = sys.argv[1]; $code" "$WORK/bad_$name"
  local rc=0 out
  out=$("$CKPT" verify "$WORK/bad_$name" 2>&1) || rc=$?
  [[ $rc == 1 ]] && grep -q -- "$expect" <<<"$out" || fail "$name: rc=$rc, output: $out"
  echo "$name -> $out" | head -1
  # train refuses it too (resume reads it).
  mkdir -p "$WORK/resume_$name/checkpoints"
  cp -r "$WORK/bad_$name" "$WORK/resume_$name/checkpoints/step_00000006"
  rc=0; out=$("$TRAIN" --config="$CONFIGS/tiny.textproto" "${common[@]}" --run_dir="$WORK/resume_$name" 2>&1) || rc=$?
  if [[ $name != missing_done ]]; then
    [[ $rc != 0 ]] || fail "$name: train resumed from a damaged checkpoint"
  fi
}
damage truncated "p = d + '/model.safetensors'; open(p, 'r+b').truncate(os.path.getsize(p) - 100)" "model.safetensors: .* bytes, the manifest says"
damage flipped_byte "p = d + '/optimizer.safetensors'; b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 1; open(p, 'wb').write(bytes(b))" "optimizer.safetensors: CRC32C mismatch"
damage missing_done "os.remove(d + '/DONE')" "incomplete checkpoint (no DONE"
damage wrong_header "p = d + '/model.safetensors'; b = bytearray(open(p, 'rb').read()); b[0:8] = (10**9).to_bytes(8, 'little'); open(p, 'wb').write(bytes(b))" "model.safetensors: CRC32C mismatch"
damage missing_rank "os.remove(d + '/rank_00001.safetensors')" "rank_00001.safetensors: missing"
damage bad_manifest "open(d + '/manifest.pb', 'wb').write(b'garbage')" "not a valid checkpoint manifest"
rc=0; out=$("$CKPT" info "$WORK/nowhere" 2>&1) || rc=$?
[[ $rc != 0 ]] && grep -q "nowhere" <<<"$out" || fail "missing directory: $out"

# export (cast) and merge-structured, read back by Python.
"$CKPT" export "$WORK/dense" "$WORK/export_bf16.safetensors" --dtype=bfloat16
"$CKPT" merge-structured "$WORK/lowrank/checkpoints/step_00000006" "$WORK/merged.safetensors" | tee "$WORK/merge.txt"
grep -q "structured layers merged" "$WORK/merge.txt" || fail merge

# Python rebuilds the forward pass from model.safetensors and matches `ckpt logits`.
TOKENS="72,101,108,108,111,44,32,119,111,114,108,100,33,10,65,108"
"$CKPT" logits "$S6" --tokens="$TOKENS" --json >"$WORK/logits.json"
"$CKPT" logits "$WORK/lowrank/checkpoints/step_00000006" --tokens="$TOKENS" --json >"$WORK/logits_lowrank.json"
python3 - "$WORK" "$TOKENS" <<'PY' || fail "PyTorch forward pass differs from Loom"
import json, math, sys
import torch
from safetensors.torch import load_file
work, tokens = sys.argv[1], [int(t) for t in sys.argv[2].split(",")]
torch.set_default_dtype(torch.float64)

def gelu(u):  # the reference's truncated constants
    return u * 0.5 * (1.0 + torch.tanh(0.79788456 * u * (1.0 + 0.044715 * u * u)))

def rope(x, base=10000.0):  # x: (heads, T, hd); rotate-half with cat(freqs, freqs)
    hd, T = x.shape[-1], x.shape[-2]
    inv = 1.0 / base ** (torch.arange(0, hd, 2) / hd)
    f = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    emb = torch.cat([f, f], -1)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
    return x * emb.cos() + torch.cat([-x2, x1], -1) * emb.sin()

def proj(w, prefix, x):
    if prefix + ".weight" in w:
        y = x @ w[prefix + ".weight"].T
    else:  # LowRank: x lr1^T lr2^T
        y = x @ w[prefix + ".lr1"].T @ w[prefix + ".lr2"].T
    return y + w[prefix + ".bias"] if prefix + ".bias" in w else y

def forward(w, ids, layers=2, heads=2, eps=1e-5):
    ln = lambda x, p: torch.nn.functional.layer_norm(x, x.shape[-1:], w[p + ".weight"], w[p + ".bias"], eps)
    h = w["embedding.weight"][torch.tensor(ids)]
    T, d = h.shape
    for i in range(layers):
        b = f"blocks.{i}"
        qkv = proj(w, b + ".mixer.qkv", ln(h, b + ".ln1"))
        q, k, v = (t.reshape(T, heads, d // heads).transpose(0, 1) for t in qkv.split(d, -1))
        y = torch.nn.functional.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True)
        h = h + proj(w, b + ".mixer.out", y.transpose(0, 1).reshape(T, d))
        h = h + proj(w, b + ".ffn.fc2", gelu(proj(w, b + ".ffn.fc1", ln(h, b + ".ln2"))))
    return ln(h, "ln_f") @ w["embedding.weight"].T

for run, name in (("dense", "logits.json"), ("lowrank", "logits_lowrank.json")):
    w = load_file(f"{work}/{run}/checkpoints/step_00000006/model.safetensors")
    ours = forward(w, tokens)
    loom = torch.tensor(json.load(open(f"{work}/{name}"))["logits"])
    err = ((ours - loom).abs().max() / loom.abs().max()).item()
    print(f"{run}: PyTorch rebuild vs Loom logits, max relative difference {err:.2e}")
    assert err < 1e-10, err
e = load_file(f"{work}/export_bf16.safetensors")
assert all(t.dtype == torch.bfloat16 for t in e.values()) and "embedding.weight" in e
m = load_file(f"{work}/merged.safetensors")
assert m["blocks.1.ffn.fc1.weight"].shape == (128, 32) and "blocks.1.ffn.fc1.lr1" not in m
# The merged dense model gives the structured model's logits.
merged = forward(m, tokens)
loom = torch.tensor(json.load(open(f"{work}/logits_lowrank.json"))["logits"])
err = ((merged - loom).abs().max() / loom.abs().max()).item()
print(f"merged dense weights in PyTorch vs Loom's structured logits: {err:.2e}")
assert err < 1e-10
PY
echo PASS
