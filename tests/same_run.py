"""same_run.py A B: two runs trained the same model, bitwise.

The resume tests (checkpoint_resume_test, multihost_resume_test, multihost_fault_test) compare an
interrupted-and-resumed run B with an uninterrupted run A: every metrics record (train loss, grad
norm, val loss, self-guided alpha) equal, and every tensor of the final weights bitwise equal.
Exits non-zero naming the first differences.
"""
import json
import sys

from safetensors.numpy import load_file


def records(run_dir):
    out = {}
    for line in open(f"{run_dir}/metrics.jsonl"):
        r = json.loads(line)
        if "event" in r:  # {"event": "resumed", ...} exists only in the resumed run
            continue
        key = ("eval" if "val_loss" in r else "train", r["step"])
        assert key not in out, f"{run_dir}: duplicate record {key}"
        out[key] = {k: r[k] for k in ("loss", "grad_norm", "val_loss", "alpha") if k in r}
    return out


def main():
    a, b = sys.argv[1], sys.argv[2]
    ra, rb = records(a), records(b)
    assert ra == rb, [(k, ra.get(k), rb.get(k))
                      for k in sorted(set(ra) | set(rb)) if ra.get(k) != rb.get(k)][:5]
    wa, wb = load_file(f"{a}/model.safetensors"), load_file(f"{b}/model.safetensors")
    assert wa.keys() == wb.keys(), sorted(set(wa) ^ set(wb))
    for k in wa:
        assert wa[k].tobytes() == wb[k].tobytes(), k
    print(f"{b.rsplit('/', 1)[-1]} == {a.rsplit('/', 1)[-1]}: {len(ra)} metric records and "
          f"{len(wa)} tensors bitwise equal")


if __name__ == "__main__":
    main()
