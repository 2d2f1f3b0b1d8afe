#!/usr/bin/env bash
# A scaling sweep end to end on this machine (the local scheduler): plan 12 tiny runs (dense and
# self-guided LowRank 32%, 2 FLOP budgets x 3 sizes each); check `flops` agrees with
# the plan for every point; run them, killing one mid-run (SIGKILL) and submitting again so it
# resumes from its checkpoint; collect (CSV + JSON), fit and plot.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
SWEEP="$RUNFILES/tools/sweep"
FLOPS="$RUNFILES/tools/flops"
TOKENIZE="$RUNFILES/tools/tokenize"
TRAIN="$RUNFILES/launch/train"
# Fresh even if Bazel reuses TEST_TMPDIR between runs (old run dirs would be resumed).
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/work.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }

"$TOKENIZE" --tokenizer=byte --input="$RUNFILES/data/corpus/carroll-alice.txt" \
  --out_dir="$WORK/shards" --val_fraction=0.05 >/dev/null 2>&1 || fail tokenize
"$SWEEP" plan --base="$RUNFILES/launch/configs/lm/tiny.textproto" --families=dense,lowrank32_sgt \
  --budgets=2e10,6e10 --sizes=32x1,64x2,96x2 --out="$WORK/sweep" \
  --set=data.tokenizer=byte --set=model.vocab_size=257 \
  --set="data.train_shards=$WORK/shards/train_*.bin" --set="data.val_shards=$WORK/shards/val_*.bin" \
  --set=train.seq_len=64 --set=train.global_batch_size=8 --set=train.micro_batch_size=8 \
  --set=train.eval_every=0 --set=train.eval_batches=4 --set=train.num_threads=1 | tee "$WORK/plan.txt"
[[ $(grep -c "budget" "$WORK/plan.txt") == 12 ]] || fail "expected 12 planned runs"

# `flops` on every planned config gives the plan's numbers.
python3 - "$WORK/sweep/sweep.json" "$FLOPS" <<'PY' || fail "flops and sweep plan disagree"
import json, subprocess, sys
points = json.load(open(sys.argv[1]))["points"]
for p in points:
    out = json.loads(subprocess.check_output([sys.argv[2], f"--config={p['config']}", "--json"]))
    assert out["params"] == p["params"], (p["name"], out["params"], p["params"])
    assert out["tokens"] == p["tokens"], (p["name"], out["tokens"], p["tokens"])
    assert abs(out["train_flops"] - p["flops"]) <= 1e-9 * p["flops"], (p["name"], out, p["flops"])
    assert abs(p["flops"] - p["budget"]) / p["budget"] < 0.05, (p["name"], p["flops"], p["budget"])
print(f"flops agrees with the plan for all {len(points)} points (each within 5% of its budget)")
PY

# Preempt one run: start it alone, SIGKILL it after its first checkpoint, then submit the sweep.
victim=$(python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['points'][3]; print(p['config'], p['run_dir'])" "$WORK/sweep/sweep.json")
read -r vconfig vdir <<<"$victim"
"$TRAIN" --config="$vconfig" --run_dir="$vdir" --set=logging.progress=none >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1200); do ls "$vdir"/checkpoints/step_*/DONE >/dev/null 2>&1 && break; sleep 0.05; done
kill -9 $pid; wait $pid 2>/dev/null || true
ls "$vdir"/checkpoints/step_*/DONE >/dev/null || fail "the victim never checkpointed"
[[ ! -f "$vdir/model.safetensors" ]] || fail "the victim finished before it was killed"

"$SWEEP" submit "$WORK/sweep" --scheduler=local --train="$TRAIN" || fail "local submit"
"$SWEEP" status "$WORK/sweep"
"$SWEEP" collect "$WORK/sweep" >/dev/null
"$SWEEP" fit "$WORK/sweep" --bootstrap=4 --budget=1e12 | tee "$WORK/fit.txt"
"$SWEEP" plot "$WORK/sweep"
python3 - "$WORK/sweep" <<'PY' || fail "collect/fit/plot outputs"
import csv, json, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/results.csv")))
assert len(rows) == 12 and all(r["state"] == "done" for r in rows), [r["state"] for r in rows]
resumed = [r["name"] for r in rows if r["resumed"] == "1"]
assert resumed == [rows[3]["name"]], resumed
for r in rows:
    assert float(r["val_loss"]) > 0 and int(r["steps"]) == int(r["total_steps"]) and float(r["params"]) > 0
res = json.load(open(f"{d}/results.json"))
assert len(res) == 12 and res[3]["resumed"] is True
fit = json.load(open(f"{d}/fit.json"))
assert set(fit["power_laws"]) == {"dense", "lowrank32_sgt"}, fit["power_laws"].keys()
p = fit["parametric"]
for k in ("E", "A", "B", "alpha", "beta", "optimal_params", "optimal_tokens"):
    assert p[k] == p[k] and p[k] > 0, (k, p[k])
for png in ("loss_vs_flops.png", "fit_residuals.png"):
    assert open(f"{d}/{png}", "rb").read(8) == b"\x89PNG\r\n\x1a\n", png
print(f"collect: 12 runs done, {resumed[0]} resumed; fit: alpha {p['alpha']:.3f}, beta {p['beta']:.3f}; plots written")
PY
echo PASS
