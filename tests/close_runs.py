"""close_runs.py WORK NAME:REF:TOL[:WEIGHT_TOL] ...: runs that must train the same model.

The data-parallel tests (data_parallel_train_test, multihost_train_test) compare an N-rank run
WORK/NAME with a reference run WORK/REF: 6 training records and 3 evaluations each, the largest
relative difference of loss, grad norm and val loss below TOL, and of every final weight tensor
below WEIGHT_TOL (default TOL). Prints where the largest differences are; exits non-zero on a
miss.
"""
import json
import sys

from safetensors.numpy import load_file


def metrics(run_dir):
    recs = [json.loads(line) for line in open(f"{run_dir}/metrics.jsonl")]
    return ([(r["step"], r["loss"], r["grad_norm"]) for r in recs if "loss" in r],
            [(r["step"], r["val_loss"]) for r in recs if "val_loss" in r])


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def compare(work, name, ref, tol, weight_tol):
    (tr, ev), (tr0, ev0) = metrics(f"{work}/{name}"), metrics(f"{work}/{ref}")
    assert len(tr) == len(tr0) == 6 and len(ev) == len(ev0) == 3, (name, len(tr), len(ev))
    diffs = [(0.0, "")]
    for (s, l, g), (s0, l0, g0) in zip(tr, tr0):
        assert s == s0, (name, s, s0)
        diffs += [(rel(l, l0), f"loss@{s}"), (rel(g, g0), f"grad_norm@{s}")]
    diffs += [(rel(v, v0), f"val_loss@{s}") for (s, v), (_, v0) in zip(ev, ev0)]
    w, w0 = load_file(f"{work}/{name}/model.safetensors"), load_file(f"{work}/{ref}/model.safetensors")
    assert w.keys() == w0.keys() and len(w) > 5, (name, sorted(w.keys()))
    wdiffs = [(0.0, "")] + [
        (float(abs(w[k].astype("float64") - w0[k].astype("float64")).max()
               / max(abs(w0[k]).max(), 1e-30)), k) for k in w0]
    (worst, where), (wworst, wwhere) = max(diffs), max(wdiffs)
    print(f"{name} vs {ref}: metrics {worst:.2e} ({where}; tolerance {tol:.0e}), "
          f"weights {wworst:.2e} ({wwhere}; tolerance {weight_tol:.0e})")
    return worst < tol and wworst < weight_tol


def main():
    work, ok = sys.argv[1], True
    for spec in sys.argv[2:]:
        name, ref, tol, *weight_tol = spec.split(":")
        ok = compare(work, name, ref, float(tol), float(weight_tol[0] if weight_tol else tol)) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
