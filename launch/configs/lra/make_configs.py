#!/usr/bin/env python3
"""Writes the Long Range Arena run configs of this directory (re-run after editing).

{transformer, s4, sgconv} x {listops, text, retrieval, image, pathfinder32, pathx} x
{scratch, spt_pretrain, spt_finetune}. Hyper-parameters follow ../shared/specs/lra_spt.md §3.3
(the "Never Train from Scratch" repo: Transformer Tay-sized models, S4 models, the paper's
Table 4/5 learning rates) and s4_sgconv.md §4.3 (SGConv preview-branch configs). Deviations,
stated once here: Loom's blocks are pre-norm LayerNorm (the S4 configs use BatchNorm and some
post-norm); the Transformer uses RoPE (the NFS "rotary" variant) instead of sinusoidal positions;
PathX attention is full, not block-local; data paths are placeholders under data/lra/ (the
release layout, or what //tools:lra_gen writes); steps are the configs' epochs converted at the
official split sizes. `spt_finetune` loads `runs/lra/<model>_<task>_spt_pretrain` (init_from).
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

TASKS = {
    # name: (lra name, data dir, max length, train examples, classes)
    "listops": ("listops", "data/lra/listops-1000", 2048, 96000),
    "text": ("text", "data/lra/aclImdb", 4096, 25000),
    "retrieval": ("retrieval", "data/lra/tsv_data", 4000, 147086),
    "image": ("image", "data/lra/cifar-10-batches-bin", 1024, 45000),
    "pathfinder32": ("pathfinder32", "data/lra/pathfinder32", 1024, 160000),
    "pathx": ("pathx", "data/lra/pathfinder128", 16384, 160000),
}

# Transformer (NFS, Tay-sized): layers, d, heads, ffn, batch, ft lr, pt lr, wd, epochs ft/pt, pooling
TRANSFORMER = {
    "listops": (6, 512, 8, 2048, 32, 1e-4, 1e-3, 0.0, 100, 100, "mean"),
    "text": (6, 512, 8, 2048, 32, 1e-4, 5e-4, 0.1, 65, 32, "mean"),
    "retrieval": (4, 128, 4, 512, 32, 5e-4, 5e-3, 0.0, 32, 32, "mean"),
    "image": (3, 64, 4, 128, 50, 1e-3, 1e-3, 0.0, 200, 50, "mean"),
    "pathfinder32": (4, 128, 8, 128, 32, 5e-4, 1e-3, 0.0, 200, 50, "mean"),
    "pathx": (4, 128, 4, 128, 32, 5e-4, 5e-4, 0.0, 200, 200, "max"),
}
# S4 (NFS): layers, d, batch, lr, wd, ssm lr, epochs ft/pt, dropout, n_ssm, dt_min, pooling
S4 = {
    "listops": (8, 128, 50, 0.01, 0.05, 1e-3, 40, 100, 0.0, 0, 1e-3, "mean"),
    "text": (6, 256, 16, 0.01, 0.05, 1e-3, 32, 32, 0.0, 1, 1e-3, "mean"),
    "retrieval": (6, 256, 64, 0.01, 0.05, 1e-3, 20, 20, 0.0, 1, 1e-3, "mean"),
    "image": (6, 512, 50, 0.01, 0.05, 1e-3, 200, 200, 0.1, 2, 1e-3, "mean"),
    "pathfinder32": (6, 256, 64, 0.004, 0.03, 1e-3, 200, 200, 0.0, 0, 1e-3, "mean"),
    "pathx": (6, 256, 16, 5e-4, 0.05, 5e-4, 50, 50, 0.0, 0, 1e-4, "max"),
}
# SGConv (preview branch): layers, d, batch, lr, wd, epochs, dropout, mode, kernel_dim,
# init_scale, decay_min, decay_max, pooling
SGCONV = {
    "listops": (8, 128, 50, 0.01, 0.05, 40, 0.0, "cat_randn", 1, 0, 2, 2, "mean"),
    "text": (6, 256, 16, 0.01, 0.05, 32, 0.0, "cat_randn", 2, 0, 2, 2, "mean"),
    "retrieval": (6, 256, 32, 0.01, 0.05, 20, 0.0, "cat_randn", 1, 0, 2, 2, "mean"),
    "image": (6, 512, 50, 0.01, 0.05, 200, 0.2, "cat_randn_learnable_fixed", 32, 0, 1, 1, "mean"),
    "pathfinder32": (6, 256, 64, 0.004, 0.03, 200, 0.2, "cat_randn", 32, 0, 2, 2, "last"),
    "pathx": (6, 256, 16, 0.004, 0.03, 50, 0.0, "cat_cos", 64, 1, 1, 3, "mean"),
}


def steps(epochs, examples, batch):
    return max(1, epochs * examples // batch)


def write(name, text):
    with open(os.path.join(HERE, name + ".textproto"), "w") as f:
        f.write(text)


def config(model, task, phase):
    lra, data_dir, length, n_train = TASKS[task]
    spt = phase == "spt_pretrain"
    run = f"{model}_{task}_{phase}"
    bidirectional = True  # masked denoising and classification: bidirectional models
    if model == "transformer":
        layers, d, heads, ffn, batch, ft_lr, pt_lr, wd, ep_ft, ep_pt, pooling = TRANSFORMER[task]
        lr = pt_lr if spt else ft_lr
        epochs = ep_pt if spt else ep_ft
        mixer = f'mixer {{ type: "attention" num_heads: {heads} }}'
        ffn_text = f'ffn {{ type: "dense" hidden_dim: {ffn} activation: "gelu" first_layer_dense: true }}'
        dropout, warmup = 0.0, 0.05
    elif model == "s4":
        layers, d, batch, lr, wd, ssm_lr, ep_ft, ep_pt, dropout, n_ssm, dt_min, pooling = S4[task]
        epochs = ep_pt if spt else ep_ft
        mixer = (f'mixer {{ type: "s4" s4 {{ d_state: 64 init: "legs" n_ssm: {n_ssm} '
                 f'dt_min: {dt_min} dt_max: 0.1 lr: {ssm_lr} weight_decay: 0 }} }}')
        ffn_text = 'ffn { type: "none" }'
        warmup = 0.05
    else:
        (layers, d, batch, lr, wd, epochs, dropout, mode, kdim, init_scale, dmin, dmax,
         pooling) = SGCONV[task]
        mixer = (f'mixer {{ type: "sgconv" sgconv {{ kernel_dim: {kdim} init_scale: {init_scale} '
                 f'decay_min: {dmin} decay_max: {dmax} mode: "{mode}" lr: 0.001 }} }}')
        ffn_text = 'ffn { type: "none" }'
        warmup = 0.02
    total = steps(epochs, n_train, batch)
    lines = [
        f"# LRA {task}, {model}, {phase.replace('_', ' ')} (written by make_configs.py; see its",
        "# docstring for the sources and the deviations).",
        f'name: "{run}"',
        "model {",
        f"  num_layers: {layers}",
        f"  d_model: {d}",
        f"  {mixer}",
        f"  {ffn_text}",
        "  init_std: 0.02",
        f"  dropout: {dropout}",
        f"  bidirectional: {'true' if bidirectional else 'false'}",
        f'  pooling: "{pooling}"',
        "}",
        "optimizer {",
        f"  lr: {lr}",
        f"  weight_decay: {wd}",
        "  grad_clip: 0",
        f"  warmup_fraction: {warmup}",
        "  min_lr_ratio: 0",
        "}",
        "train {",
        f"  max_steps: {total}",
        f"  seq_len: {length}",
        f"  global_batch_size: {batch}",
        f"  micro_batch_size: {batch}",
        "  seed: 3333",
        "  log_every: 50",
        f"  eval_every: {max(1, total // 20)}",
        "  eval_batches: 0",
        "}",
        "task {",
        '  type: "lra"',
        "  lra {",
        f'    name: "{lra}"',
        f'    data_dir: "{data_dir}"',
        f'    objective: "{"spt" if spt else "classify"}"',
    ]
    if phase == "spt_finetune":
        lines.append(f'    init_from: "runs/lra/{model}_{task}_spt_pretrain"')
    lines += ["  }", "}", "checkpoint { every_steps: 1000 keep_last: 2 }", ""]
    write(run, "\n".join(lines))


if __name__ == "__main__":
    for model in ("transformer", "s4", "sgconv"):
        for task in TASKS:
            for phase in ("scratch", "spt_pretrain", "spt_finetune"):
                config(model, task, phase)
