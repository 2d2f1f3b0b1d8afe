#!/usr/bin/env python3
"""Throughput race: Loom's `train` against the eager PyTorch loop a user would otherwise write.

Run through Bazel (tests/throughput_benchmark.sh passes the binaries and data):

    bazel run -c opt //tests:throughput_benchmark -- [--steps=N] [--threads=T]
        [--models=small,small_lowrank_sgt,large] [--keep_work] [--json_out=FILE]

1. Tokenizes the bundled corpus (data/corpus, GPT-2 BPE) with Loom's `tokenize` into a temp dir.
2. Per model:
   a. Loom: the real `train` binary for N steps (no shuffling, no evaluation, no val shards, no
      checkpoints, no TensorBoard), log_every=2. Tokens/s: the records after the first (the first
      covers steps 1-2, the same two warm-up steps the PyTorch side leaves out), combined as
      total tokens / total step time of those records (= the mean of the per-record rates,
      weighted by their duration).
   b. PyTorch: the same architecture in plain eager modules (nn.Linear / nn.LayerNorm /
      nn.Embedding, F.scaled_dot_product_attention, F.gelu, F.cross_entropy), the same uint16
      shards read with numpy memmap in the same row order, the same batch, steps, thread count
      (torch.set_num_threads), torch.optim.AdamW with the same hyper-parameters, global-norm
      clipping, the same warmup + cosine LR schedule. Timed after 2 warm-up steps:
      tokens/s = (N - 2) * batch * seq / time. Runs in a child process twice: with the default
      glibc allocator, and with the allocator settings Loom applies to itself
      (MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483648 MALLOC_TOP_PAD_=67108864, what
      core/malloc_tuning.cc sets with mallopt).
3. Prints a table and two verdicts against the target (Loom >= 1.3x the PyTorch loop on "small"
   and never slower on "large"): against the loop with glibc's default malloc (the issue's
   comparison: what a user runs), and, stricter, against the faster of the two PyTorch settings.

Models: "small" (d=256, 4 layers, 4 heads, seq 256, batch 8, dense 4d GELU FFN), "small_lowrank_sgt"
(the same with LowRank FFNs R=d/4 except block 0's, self-guided training with a cosine alpha over
the first 30% of the steps, fixedstep so both sides take N steps, reduce_flop off on both sides),
"large" (d=512, 8 layers, 8 heads, seq 512, batch 8, dense). All: GPT-2 vocabulary (50257), pre-LN,
RoPE, fused QKV with bias, tied embeddings, no LM-head bias, float32, loss in float32 over every
position.
"""

import argparse
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# Optimisation settings of launch/configs/lm/tiny*.textproto, passed to both sides explicitly.
HPARAMS = dict(lr=2e-3, weight_decay=0.1, grad_clip=1.0, warmup_fraction=0.1, min_lr_ratio=0.1,
               beta1=0.9, beta2=0.999, eps=1e-8)
SEED = 1005
VOCAB = 50257  # GPT-2
WARMUP_STEPS = 2
LOOM_LOG_EVERY = 2  # first record = the 2 warm-up steps
SGT = dict(max_step_ratio=0.3, scheduler="cosine", mode="fixedstep", reduce_flop=False)
TUNED_MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "2147483648",
                    "MALLOC_TOP_PAD_": "67108864"}

MODELS = {
    "small": dict(config="tiny.textproto", d=256, layers=4, heads=4, seq=256, batch=8,
                  ffn="dense", rank=0, sgt=False),
    "small_lowrank_sgt": dict(config="tiny_lowrank_sgt.textproto", d=256, layers=4, heads=4,
                              seq=256, batch=8, ffn="lowrank", rank=64, sgt=True),
    "large": dict(config="tiny.textproto", d=512, layers=8, heads=8, seq=512, batch=8,
                  ffn="dense", rank=0, sgt=False),
}
TARGETS = {"small": 1.3, "large": 1.0}  # Loom / PyTorch


def lr_at(step, total):
    """core/lr_schedule.cc: linear warmup over int(f*T) steps, then cosine to min_lr_ratio*lr."""
    lr, w = HPARAMS["lr"], int(HPARAMS["warmup_fraction"] * total)
    if step < w:
        return (step + 1) / w * lr
    eta_min = HPARAMS["min_lr_ratio"] * lr
    progress = min(1.0, (step - w) / max(1, total - w))
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * progress)) / 2


def alpha_at(step, guided):
    """core/alpha_schedule.cc, cosine: alpha of 0-based optimizer step `step`; 0 after."""
    if guided <= 0 or step >= guided:
        return 0.0
    return 0.5 * (1 + math.cos(math.pi * step / guided))


# ---------------------------------------------------------------------------------------------
# The PyTorch side (runs in a child process: `--worker`).
# ---------------------------------------------------------------------------------------------

def run_worker(args):
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    spec = MODELS[args.model]
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    d, n_layers, n_heads, seq, batch = (spec[k] for k in ("d", "layers", "heads", "seq", "batch"))
    steps = args.steps
    guided = int(SGT["max_step_ratio"] * steps) if spec["sgt"] else 0

    # ---- data: the shards as one uint16 stream, rows of seq+1 tokens overlapping by one ----
    streams = []
    for path in sorted(glob.glob(os.path.join(args.shards, "train_*.bin"))):
        header = np.fromfile(path, dtype="<i4", count=256)
        assert header[0] == 20240520 and header[1] == 1, f"{path}: not a token shard"
        streams.append(np.memmap(path, dtype="<u2", mode="r", offset=1024, shape=(int(header[2]),)))
    assert streams, f"no train_*.bin in {args.shards}"
    tokens = streams[0] if len(streams) == 1 else np.concatenate(streams)
    num_rows = (len(tokens) - 1) // seq

    def get_batch(step):
        rows = [(step * batch + i) % num_rows for i in range(batch)]
        a = torch.from_numpy(np.stack([tokens[r * seq:r * seq + seq + 1] for r in rows])
                             .astype(np.int64))
        return a[:, :-1], a[:, 1:]

    # ---- model ----
    class Rope(nn.Module):
        def __init__(self, head_dim, seq_len, base=10000.0):
            super().__init__()
            inv = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
            freqs = torch.outer(torch.arange(seq_len, dtype=torch.float64), inv)
            emb = torch.cat([freqs, freqs], -1)
            self.register_buffer("cos", emb.cos().float(), persistent=False)
            self.register_buffer("sin", emb.sin().float(), persistent=False)

        def forward(self, x):  # (b, h, t, hd), rotate-half
            t, half = x.size(-2), x.size(-1) // 2
            x1, x2 = x[..., :half], x[..., half:]
            return x * self.cos[:t] + torch.cat([-x2, x1], -1) * self.sin[:t]

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(d, 3 * d)
            self.out = nn.Linear(d, d)
            self.rope = Rope(d // n_heads, seq)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.qkv(x).split(d, dim=-1)
            q, k, v = (z.view(b, t, n_heads, d // n_heads).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(self.rope(q), self.rope(k), v, is_causal=True)
            return self.out(y.transpose(1, 2).reshape(b, t, d))

    class LowRank(nn.Module):
        """y = (x lr1^T) lr2^T + b; with a guide: alpha*guide(x) + (1-alpha)*S(x) + b."""

        def __init__(self, n_in, n_out, rank, with_guide):
            super().__init__()
            self.lr1 = nn.Linear(n_in, rank, bias=False)
            self.lr2 = nn.Linear(rank, n_out, bias=False)
            self.bias = nn.Parameter(torch.zeros(n_out))
            self.guide = nn.Linear(n_in, n_out, bias=False) if with_guide else None
            self.alpha = 0.0

        def forward(self, x):
            y = self.lr2(self.lr1(x))
            if self.guide is not None and self.alpha > 0:
                y = self.alpha * self.guide(x) + (1 - self.alpha) * y
            return y + self.bias

    class Ffn(nn.Module):
        def __init__(self, structured):
            super().__init__()
            if structured:
                self.fc1 = LowRank(d, 4 * d, spec["rank"], spec["sgt"])
                self.fc2 = LowRank(4 * d, d, spec["rank"], spec["sgt"])
            else:
                self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self, i):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.attn = Attention()
            self.ffn = Ffn(spec["ffn"] == "lowrank" and i > 0)  # block 0 dense (first_layer_dense)

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.ffn(self.ln2(x))

    class Lm(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(VOCAB, d)
            self.blocks = nn.ModuleList(Block(i) for i in range(n_layers))
            self.ln_f = nn.LayerNorm(d)
            with torch.no_grad():  # N(0, 0.02) weights, zero biases; the LowRank SVD init
                for m in self.modules():
                    if isinstance(m, (nn.Linear, nn.Embedding)):
                        m.weight.normal_(0.0, 0.02)
                        if getattr(m, "bias", None) is not None:
                            m.bias.zero_()
                for m in self.modules():
                    if isinstance(m, LowRank):
                        w0 = torch.randn(m.lr2.out_features, m.lr1.in_features,
                                         dtype=torch.float64) * 0.02
                        u, s, vh = torch.linalg.svd(w0, full_matrices=False)
                        r = m.lr1.out_features
                        m.lr1.weight.copy_(s[:r].sqrt()[:, None] * vh[:r])
                        m.lr2.weight.copy_(u[:, :r] * s[:r].sqrt())
                        if m.guide is not None:
                            m.guide.weight.copy_(m.lr2.weight @ m.lr1.weight)

        def forward(self, idx):
            h = self.emb(idx)
            for blk in self.blocks:
                h = blk(h)
            return F.linear(self.ln_f(h), self.emb.weight)  # tied head, no bias

    model = Lm()
    model.train()
    params = list(model.parameters())
    num_params = sum(p.numel() for p in params)
    lowranks = [m for m in model.modules() if isinstance(m, LowRank)]
    opt = torch.optim.AdamW(params, lr=HPARAMS["lr"], betas=(HPARAMS["beta1"], HPARAMS["beta2"]),
                            eps=HPARAMS["eps"], weight_decay=HPARAMS["weight_decay"])

    losses = []
    t0 = None
    for step in range(steps):
        if step == WARMUP_STEPS:
            t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps)
        a = alpha_at(step, guided)
        for m in lowranks:
            m.alpha = a  # 0 after the guided phase: the guide is no longer computed nor updated
        inputs, targets = get_batch(step)
        logits = model(inputs)
        loss = F.cross_entropy(logits.float().view(-1, VOCAB), targets.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, HPARAMS["grad_clip"])
        opt.step()
        losses.append(loss.item())
    elapsed = time.perf_counter() - t0
    timed = steps - WARMUP_STEPS
    print(json.dumps(dict(
        tokens_per_s=timed * batch * seq / elapsed, timed_steps=timed, seconds=elapsed,
        first_loss=losses[0], last_loss=losses[-1], num_params=num_params,
        torch=torch.__version__, threads=torch.get_num_threads(),
        malloc_env={k: os.environ[k] for k in TUNED_MALLOC_ENV if k in os.environ})))


# ---------------------------------------------------------------------------------------------
# The driver.
# ---------------------------------------------------------------------------------------------

def fail(msg):
    print(f"throughput_benchmark: error: {msg}", file=sys.stderr)
    sys.exit(1)


def run_logged(cmd, log_path, env=None):
    with open(log_path, "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if rc != 0:
        with open(log_path) as log:
            tail = log.read()[-4000:]
        fail(f"{' '.join(cmd[:2])} ... exited with {rc}; log {log_path}:\n{tail}")


def run_loom(args, name, spec, work):
    run_dir = os.path.join(work, f"loom_{name}")
    sets = {
        "data.tokenizer": "gpt2",
        "data.train_shards": os.path.join(work, "shards", "train_*.bin"),
        "data.val_shards": "",
        "data.shuffle": "false",
        "model.d_model": spec["d"],
        "model.num_layers": spec["layers"],
        "model.mixer.num_heads": spec["heads"],
        "model.ffn.type": spec["ffn"],
        "model.ffn.activation": "gelu",
        "train.seq_len": spec["seq"],
        "train.global_batch_size": spec["batch"],
        "train.micro_batch_size": spec["batch"],
        "train.max_steps": args.steps,
        "train.seed": SEED,
        "train.log_every": LOOM_LOG_EVERY,
        "train.eval_every": 0,
        "train.num_threads": args.threads,
        "checkpoint.every_steps": 0,
        "logging.progress": "plain",
        "logging.tensorboard": "false",
        "logging.histogram_every": -1,
        "optimizer.lr_schedule": "cosine",
    }
    sets.update({f"optimizer.{k}": v for k, v in HPARAMS.items()})
    if spec["ffn"] == "lowrank":
        sets.update({"model.ffn.rank": spec["rank"], "model.ffn.first_layer_dense": "true"})
    if spec["sgt"]:
        sets.update({"schedule.self_guided.enabled": "true",
                     "schedule.self_guided.mode": SGT["mode"],
                     "schedule.self_guided.scheduler": SGT["scheduler"],
                     "schedule.self_guided.reduce_flop": str(SGT["reduce_flop"]).lower(),
                     "schedule.self_guided.max_step_ratio": SGT["max_step_ratio"]})
    cmd = [args.train, f"--config={os.path.join(args.config_dir, spec['config'])}"]
    cmd += [f"--set={k}={v}" for k, v in sets.items()] + [f"--run_dir={run_dir}"]
    log_path = os.path.join(work, f"loom_{name}.log")
    run_logged(cmd, log_path)
    recs = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))]
    train = [r for r in recs if "tokens_per_s" in r]
    if len(train) < 2:
        fail(f"Loom {name}: {len(train)} log records; need --steps > {LOOM_LOG_EVERY}")
    tokens = seconds = 0.0
    prev_step = train[0]["step"]
    for r in train[1:]:
        n_tok = (r["step"] - prev_step) * spec["batch"] * spec["seq"]
        tokens += n_tok
        seconds += n_tok / r["tokens_per_s"]
        prev_step = r["step"]
    m = re.search(r"\| (\S+) parameters \|", open(log_path).read())
    return dict(tokens_per_s=tokens / seconds, timed_steps=prev_step - train[0]["step"],
                seconds=seconds, records=len(train) - 1,
                rate_mean=sum(r["tokens_per_s"] for r in train[1:]) / (len(train) - 1),
                first_loss=train[0]["loss"], last_loss=train[-1]["loss"],
                params=m.group(1) if m else "?", log=log_path)


def run_torch(args, name, work, tuned):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if tuned:
        env.update(TUNED_MALLOC_ENV)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"--model={name}",
           f"--steps={args.steps}", f"--threads={args.threads}",
           f"--shards={os.path.join(work, 'shards')}"]
    log_path = os.path.join(work, f"torch_{name}_{'tuned' if tuned else 'default'}.log")
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, env=env, text=True)
    if proc.returncode != 0:
        fail(f"PyTorch {name} exited with {proc.returncode}; log {log_path}:\n"
             f"{open(log_path).read()[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def human_params(n):
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.2f}k"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per run (> 2)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--models", default="small,small_lowrank_sgt,large")
    p.add_argument("--train", help="Loom's train binary")
    p.add_argument("--tokenize", help="Loom's tokenize binary")
    p.add_argument("--config_dir", help="launch/configs/lm")
    p.add_argument("--corpus_dir", help="data/corpus")
    p.add_argument("--keep_work", action="store_true", help="keep the temp dir (logs, runs)")
    p.add_argument("--json_out", help="also write the results here")
    # worker mode (internal)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--shards", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return run_worker(args)

    if args.steps <= WARMUP_STEPS:
        fail(f"--steps must be > {WARMUP_STEPS} (the first {WARMUP_STEPS} are warm-up)")
    names = [m for m in args.models.split(",") if m]
    for m in names:
        if m not in MODELS:
            fail(f"unknown model '{m}' (known: {', '.join(MODELS)})")
    for flag in ("train", "tokenize", "config_dir", "corpus_dir"):
        if not getattr(args, flag) or not os.path.exists(getattr(args, flag)):
            fail(f"--{flag}={getattr(args, flag)} does not exist (run through bazel run)")

    work = tempfile.mkdtemp(prefix="loom_throughput.")
    try:
        load = os.getloadavg()[0]
        print(f"throughput_benchmark: {args.steps} steps, {args.threads} threads, models "
              f"{','.join(names)}; load average {load:.2f} on {os.cpu_count()} cores"
              + ("  (WARNING: the machine is busy; numbers are not comparable)"
                 if load > 0.5 else ""), flush=True)
        t = time.time()
        run_logged([args.tokenize, "--tokenizer=gpt2",
                    f"--input={os.path.join(args.corpus_dir, '*.txt')}",
                    f"--out_dir={os.path.join(work, 'shards')}", "--val_fraction=0.01"],
                   os.path.join(work, "tokenize.log"))
        print(f"tokenized data/corpus (GPT-2 BPE) in {time.time() - t:.1f} s", flush=True)

        results = {}
        for name in names:
            spec = MODELS[name]
            r = {}
            for side, fn in (("loom", lambda: run_loom(args, name, spec, work)),
                             ("torch", lambda: run_torch(args, name, work, tuned=False)),
                             ("torch_tuned", lambda: run_torch(args, name, work, tuned=True))):
                t = time.time()
                r[side] = fn()
                print(f"  {name:18s} {side:12s} {r[side]['tokens_per_s']:9.0f} tokens/s "
                      f"({r[side]['timed_steps']} steps timed, run {time.time() - t:.0f} s)",
                      flush=True)
            results[name] = r

        print()
        print(f"| model | Loom tokens/s | PyTorch tokens/s | ratio | PyTorch, Loom's malloc "
              f"settings, tokens/s | ratio | params Loom / PyTorch |")
        print("|---|---|---|---|---|---|---|")
        for name, r in results.items():
            lo, pt, pt2 = (r[k]["tokens_per_s"] for k in ("loom", "torch", "torch_tuned"))
            print(f"| {name} | {lo:.0f} | {pt:.0f} | {lo / pt:.2f}x | {pt2:.0f} | {lo / pt2:.2f}x "
                  f"| {r['loom']['params']} / {human_params(r['torch']['num_params'])} |")
        print()
        # Two verdicts: the comparison (the eager PyTorch loop as a user runs it, glibc
        # defaults) and a stricter one (PyTorch also given Loom's malloc settings).
        for label, sides in (("vs the PyTorch loop with default malloc", ("torch",)),
                             ("vs PyTorch also given Loom's malloc settings",
                              ("torch", "torch_tuned"))):
            parts, met = [], True
            for name, target in TARGETS.items():
                if name not in results:
                    parts.append(f"{name} not run")
                    met = False
                    continue
                r = results[name]
                ratio = r["loom"]["tokens_per_s"] / max(r[k]["tokens_per_s"] for k in sides)
                ok = ratio >= target
                met = met and ok
                parts.append(f"{name} {ratio:.2f}x {'>=' if ok else '<'} {target:.1f}x")
            verdict = ("NOT MET" if any(" < " in s for s in parts) else
                       "NOT FULLY ASSESSED" if not met else "MET")
            print(f"verdict {label}: {verdict}: {'; '.join(parts)} "
                  f"(target: >= 1.3x on small, >= 1.0x on large)")
        if args.json_out:
            out = os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", ""), args.json_out)
            with open(out, "w") as f:
                json.dump(dict(steps=args.steps, threads=args.threads, load_average=load,
                               results=results), f, indent=1)
    finally:
        if args.keep_work:
            print(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
