#!/usr/bin/env bash
# The "Never Train from Scratch" comparison at CPU scale (not part of CI): on generated ListOps
# and Pathfinder-32 data (//tools:lra_gen), train
#   1. a Transformer from scratch,
#   2. the same Transformer self-pretrained (masked denoising) on the task's training split and
#      then finetuned,
#   3. S4 from scratch,
# and print the test accuracies as a markdown table (also written to runs/lra_experiment/results.md).
#
#   launch/lra_experiment.sh                 # the full experiment: ListOps ~30 min, Pathfinder ~40 min on 2 cores
#   LRA_EXPERIMENT_SMOKE=1 launch/lra_experiment.sh   # a few steps each: checks the pipeline
#
# Sizes (smaller than the paper's; a 2-core CPU): ListOps 20k/1k/1k examples with the exact
# generator rules but expressions of 20-100 tokens instead of 500-2000 (--min_length/--max_length;
# at 100-500 tokens and 3000 steps every model stayed at the majority class), Pathfinder-32 12k
# images (80/10/10), models of 4 layers of width 64, one learning rate per model family for
# scratch and finetuning (1e-3 Transformer, 4e-3 S4). Environment: OUT (default
# runs/lra_experiment), THREADS (default 2), TASKS (default "listops pathfinder32"),
# PF_DIFFICULTY (Pathfinder contour length: 14 = the LRA task (default), 9, or 6 = curv_baseline).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/lra_experiment}"
THREADS="${THREADS:-2}"
SMOKE="${LRA_EXPERIMENT_SMOKE:-0}"
TASKS="${TASKS:-listops pathfinder32}"
PF_DIFFICULTY="${PF_DIFFICULTY:-14}"
mkdir -p "$OUT"
bazel build -c opt //launch:train //tools:lra_gen >/dev/null
TRAIN=bazel-bin/launch/train
GEN=bazel-bin/tools/lra_gen
CFG=launch/configs/lra

# Steps per task: Transformer scratch and finetuning, Transformer self-pretraining, S4 scratch;
# each task sized for under an hour on 2 cores.
if [[ $SMOKE == 1 ]]; then
  LISTOPS=(--train=400 --val=50 --test=50); PF_IMAGES=600
  declare -A STEPS=([listops]="20 10 20" [pathfinder32]="20 10 20"); EVAL=10
else
  LISTOPS=(--train=20000 --val=1000 --test=1000); PF_IMAGES=12000
  # Transformer runs on ListOps cost ~100 s per 2500 steps and S4 ~15 min: the Transformer gets
  # 5000 steps (scratch and finetuning) and 15000 of self-pretraining, S4 2500 (where its
  # validation accuracy had flattened).
  declare -A STEPS=([listops]="5000 15000 2500" [pathfinder32]="1500 1500 1500"); EVAL=250
fi
[[ -f "$OUT/data/listops/basic_train.tsv" ]] ||
  "$GEN" listops --out_dir="$OUT/data/listops" "${LISTOPS[@]}" --min_length=20 --max_length=100 --seed=1
case "$PF_DIFFICULTY" in
  6) PF_DIR=curv_baseline ;; 9 | 14) PF_DIR=curv_contour_length_$PF_DIFFICULTY ;;
  *) echo "PF_DIFFICULTY must be 6, 9 or 14, got $PF_DIFFICULTY" >&2; exit 2 ;;
esac
[[ -d "$OUT/data/pathfinder32/$PF_DIR" ]] ||
  "$GEN" pathfinder --resolution=32 --out_dir="$OUT/data/pathfinder32" --num_images="$PF_IMAGES" \
    --difficulty="$PF_DIFFICULTY" --seed=1

common=(--set=train.num_threads="$THREADS" --set=logging.progress=plain --set=train.log_every=50
  --set=train.eval_every="$EVAL" --set=train.eval_batches=0 --set=checkpoint.every_steps=500)
declare -A DATA=([listops]="$OUT/data/listops" [pathfinder32]="$OUT/data/pathfinder32")
declare -A SHAPE=(
  [transformer_listops]="--set=model.num_layers=4 --set=model.d_model=64 --set=model.mixer.num_heads=4 --set=model.ffn.hidden_dim=128 --set=train.global_batch_size=32 --set=train.micro_batch_size=32 --set=optimizer.lr=1e-3"
  [s4_listops]="--set=model.num_layers=4 --set=model.d_model=64 --set=train.global_batch_size=32 --set=train.micro_batch_size=32 --set=optimizer.lr=4e-3"
  [transformer_pathfinder32]="--set=model.num_layers=4 --set=model.d_model=64 --set=model.mixer.num_heads=4 --set=model.ffn.hidden_dim=64 --set=train.global_batch_size=16 --set=train.micro_batch_size=16 --set=optimizer.lr=1e-3"
  [s4_pathfinder32]="--set=model.num_layers=4 --set=model.d_model=64 --set=train.global_batch_size=16 --set=train.micro_batch_size=16 --set=optimizer.lr=4e-3")

run() {  # run NAME CONFIG STEPS EXTRA...
  local name=$1 config=$2 steps=$3; shift 3
  [[ -f "$OUT/$name/model.safetensors" ]] && return 0
  echo "== $name ($steps steps)"
  "$TRAIN" --config="$config" "${common[@]}" --set=train.max_steps="$steps" "$@" \
    --run_dir="$OUT/$name" 2>&1 | tail -3
}

for task in $TASKS; do
  read -r scratch pretrain s4_steps <<<"${STEPS[$task]}"
  d=(--set=task.lra.data_dir="${DATA[$task]}")
  [[ $task == listops ]] && d+=(--set=train.seq_len=128)
  [[ $task == pathfinder32 ]] && d+=(--set=task.lra.pathfinder_difficulty="$PF_DIR")
  run "transformer_${task}_scratch" "$CFG/transformer_${task}_scratch.textproto" "$scratch" "${d[@]}" ${SHAPE[transformer_$task]}
  run "transformer_${task}_spt_pretrain" "$CFG/transformer_${task}_spt_pretrain.textproto" "$pretrain" "${d[@]}" ${SHAPE[transformer_$task]}
  run "transformer_${task}_spt_finetune" "$CFG/transformer_${task}_spt_finetune.textproto" "$scratch" "${d[@]}" ${SHAPE[transformer_$task]} \
    --set=task.lra.init_from="$OUT/transformer_${task}_spt_pretrain"
  run "s4_${task}_scratch" "$CFG/s4_${task}_scratch.textproto" "$s4_steps" "${d[@]}" ${SHAPE[s4_$task]}
done

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = []
for task in ("listops", "pathfinder32"):
    for name, label in ((f"transformer_{task}_scratch", "Transformer, scratch"),
                        (f"transformer_{task}_spt_finetune", "Transformer, SPT"),
                        (f"s4_{task}_scratch", "S4, scratch")):
        path = f"{out}/{name}/metrics.jsonl"
        if not os.path.exists(path):
            rows.append((task, label, "-", "-", "-")); continue
        evals = [r for r in map(json.loads, open(path)) if "test_accuracy" in r]
        best = max(evals, key=lambda r: r["val_accuracy"]) if evals else None
        rows.append((task, label, f"{evals[-1]['test_accuracy']:.3f}" if evals else "-",
                     f"{best['test_accuracy']:.3f} (step {best['step']})" if best else "-",
                     evals[-1]["step"] if evals else "-"))
table = ["| task | model | test acc (final) | test acc at best val | steps |", "|---|---|---|---|---|"]
table += [f"| {t} | {m} | {a} | {b} | {s} |" for t, m, a, b, s in rows]
text = "\n".join(table) + "\n"
open(f"{out}/results.md", "w").write(text)
print(text)
PY
