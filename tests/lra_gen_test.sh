#!/usr/bin/env bash
# `lra_gen` end to end: every subcommand at small sizes, the outputs read back with Python
# (csv/numpy/PIL) the way the LRA loaders read them, determinism per seed, and the exit codes.
set -euo pipefail
RUNFILES="${TEST_SRCDIR:-$0.runfiles}/loom"
GEN="$RUNFILES/tools/lra_gen"
CORPUS="$RUNFILES/data/corpus"
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/lra_gen.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_exit CODE PATTERN ARGS...: the command exits with CODE and its stderr matches PATTERN.
expect_exit() {
  local code=$1 pattern=$2
  shift 2
  local rc=0
  "$GEN" "$@" --progress=none >/dev/null 2>"$WORK/err" || rc=$?
  [[ $rc == "$code" ]] || fail "lra_gen $* exited $rc, expected $code: $(cat "$WORK/err")"
  grep -q -- "$pattern" "$WORK/err" || fail "lra_gen $*: stderr lacks '$pattern': $(cat "$WORK/err")"
}

# ---- usage and errors -------------------------------------------------------------------------
expect_exit 2 "no command" 
expect_exit 2 "unknown command 'bogus'" bogus
expect_exit 2 "unknown flag \-\-bogus" listops --out_dir="$WORK/x" --bogus=1
expect_exit 2 "\-\-out_dir is required" listops
expect_exit 2 "\-\-num_images" pathfinder --out_dir="$WORK/x"
expect_exit 2 "\-\-resolution=48" pathfinder --out_dir="$WORK/x" --num_images=2 --resolution=48
expect_exit 2 "\-\-input is required" imdb --out_dir="$WORK/x"
expect_exit 1 "$WORK/missing.json.gz" imdb --input="$WORK/missing.json.gz" --out_dir="$WORK/x"
echo "not gzip" >"$WORK/bad.json.gz"
expect_exit 1 "bad.json.gz" imdb --input="$WORK/bad.json.gz" --out_dir="$WORK/x"
expect_exit 1 "$WORK/nowhere" fashion --input_dir="$WORK/nowhere" --out_dir="$WORK/x"
echo "usage and errors: ok"

# ---- listops ------------------------------------------------------------------------------------
for d in lo1 lo2; do
  "$GEN" listops --out_dir="$WORK/$d" --train=80 --val=12 --test=12 --seed=3 --progress=none
done
for f in basic_train.tsv basic_val.tsv basic_test.tsv; do
  cmp "$WORK/lo1/$f" "$WORK/lo2/$f" || fail "listops $f differs between two runs with one seed"
done
python3 - "$WORK/lo1" <<'PY' || fail "listops files"
import sys
d = sys.argv[1]

def evaluate(s):
    # Independent evaluator: recursive descent over the tokens without parentheses.
    toks = s.replace('(', ' ').replace(')', ' ').split()
    pos = 0
    def node():
        nonlocal pos
        t = toks[pos]; pos += 1
        if t.isdigit():
            return int(t)
        assert t in ('[MIN', '[MAX', '[MED', '[SM'), t
        args = []
        while toks[pos] != ']':
            args.append(node())
        pos += 1
        a = sorted(args)
        if t == '[MIN': return a[0]
        if t == '[MAX': return a[-1]
        if t == '[SM': return sum(a) % 10
        m = len(a) // 2
        return int(a[m] if len(a) % 2 else (a[m - 1] + a[m]) / 2)
    v = node()
    assert pos == len(toks)
    return v

seen = set()
for split, n in (('train', 80), ('val', 12), ('test', 12)):
    raw = open(f'{d}/basic_{split}.tsv', 'rb').read()
    assert raw.endswith(b'\r\n') and raw.count(b'\r\n') == n + 1, split
    lines = raw.decode().split('\r\n')[:-1]
    assert lines[0] == 'Source\tTarget', lines[0]
    for line in lines[1:]:
        src, tgt = line.split('\t')
        assert evaluate(src) == int(tgt), line[:80]
        length = len(src.replace('(', ' ').replace(')', ' ').split())
        assert 500 < length < 2000, length
        assert src.count('(') == src.count(')')
        assert src not in seen
        seen.add(src)
print('listops: ok,', len(seen), 'unique trees')
PY

# ---- pathfinder -------------------------------------------------------------------------------
"$GEN" pathfinder --resolution=32 --out_dir="$WORK/pf/pathfinder32" --num_images=30 \
  --images_per_dir=12 --seed=4 --progress=none
"$GEN" pathfinder --resolution=32 --out_dir="$WORK/pf_again/pathfinder32" --num_images=30 \
  --images_per_dir=12 --seed=4 --threads=1 --progress=none
diff -r "$WORK/pf/pathfinder32" "$WORK/pf_again/pathfinder32" >/dev/null \
  || fail "pathfinder output differs between two runs with one seed"
"$GEN" pathfinder --resolution=32 --difficulty=6 --out_dir="$WORK/pf/pathfinder32" \
  --num_images=5 --progress=none
for r in 64 128 256; do
  "$GEN" pathfinder --resolution=$r --out_dir="$WORK/pf/pathfinder$r" --num_images=4 \
    --progress=none
done
python3 - "$WORK/pf" <<'PY' || fail "pathfinder files"
import glob, os, sys
import numpy as np
from PIL import Image
root = sys.argv[1]
expect = {  # resolution -> (images, metadata tail after the label)
    32: (30, '1.0 14 4 2 0.5 1 1'), 64: (4, '1.8 14 4 5 1 1 1'),
    128: (4, None), 256: (4, '1.8 14 4 5 2 3 1')}
for res, (count, tail) in expect.items():
    d = f'{root}/pathfinder{res}/curv_contour_length_14'
    metas = sorted(glob.glob(f'{d}/metadata/*.npy'))
    assert len(metas) == (3 if res == 32 else 1), metas
    labels = []
    for m in metas:
        # As the TFDS builder and S4 read them: text, split on '\n' and ' '.
        lines = open(m).read().split('\n')
        assert lines[-1] == ''
        for i, line in enumerate(lines[:-1]):
            f = line.split(' ')
            assert len(f) == 11, line
            k = os.path.basename(m)[:-4]
            assert f[0] == f'imgs/{k}' and f[1] == f'sample_{i}.png' and f[2] == str(i), line
            assert f[3] in ('0', '1'), line
            if tail:
                assert ' '.join(f[4:]) == tail, line
            else:
                assert ' '.join(f[4:5] + f[5:9]) == '1.8 14 4 5 1.5' and f[9] in ('2', '3'), line
            labels.append(int(f[3]))
            img = Image.open(f'{d}/{f[0]}/{f[1]}')
            assert img.mode == 'L' and img.size == (res, res), (img.mode, img.size)
            a = np.asarray(img)
            assert a.min() == 0 and a.max() == 255, (a.min(), a.max())
    assert len(labels) == count, (res, len(labels))
    if res == 32:
        assert 0 < sum(labels) < count, labels
base = f'{root}/pathfinder32/curv_baseline/metadata/0.npy'
assert all(l.split(' ')[5:7] == ['6', '2'] for l in open(base).read().split('\n')[:-1])
print('pathfinder: ok')
PY

# ---- imdb ---------------------------------------------------------------------------------------
python3 - "$WORK/reviews.json.gz" <<'PY'
import gzip, json, sys
reviews = [{'t': f'review {i}: {"great" if i % 2 else "awful"} film\nline two \u00e9', 's': i % 2}
           for i in range(40)]
with gzip.open(sys.argv[1], 'wt', encoding='utf-8') as f:
    json.dump(reviews, f)
PY
"$GEN" imdb --input="$WORK/reviews.json.gz" --out_dir="$WORK/imdb" --seed=9 --progress=none
"$GEN" imdb --input="$WORK/reviews.json.gz" --out_dir="$WORK/imdb2" --seed=9 --progress=none
diff -r "$WORK/imdb" "$WORK/imdb2" >/dev/null || fail "imdb output differs between runs"
python3 - "$WORK/imdb" "$WORK/reviews.json.gz" <<'PY' || fail "imdb files"
import glob, gzip, json, os, sys
root, src = sys.argv[1], sys.argv[2]
reviews = json.load(gzip.open(src, 'rt', encoding='utf-8'))
texts = {0: sorted(r['t'] for r in reviews if r['s'] == 0),
         1: sorted(r['t'] for r in reviews if r['s'] == 1)}
got = {0: [], 1: []}
for split in ('train', 'test'):
    for cls, label, rating in (('neg', 0, '1'), ('pos', 1, '10')):
        files = sorted(glob.glob(f'{root}/{split}/{cls}/*.txt'))
        assert len(files) == 10, (split, cls, len(files))
        ids = sorted(int(os.path.basename(f).split('_')[0]) for f in files)
        assert ids == list(range(10)), ids
        for f in files:
            assert f.endswith(f'_{rating}.txt'), f
            got[label].append(open(f, encoding='utf-8').read())
for label in (0, 1):
    assert sorted(got[label]) == texts[label], label
print('imdb: ok')
PY
REAL_IMDB=/work/shared/data/imdb/reviews.json.gz
if [[ -f $REAL_IMDB ]]; then
  "$GEN" imdb --input="$REAL_IMDB" --out_dir="$WORK/imdb_real" --progress=none
  for d in train/pos train/neg test/pos test/neg; do
    n=$(ls "$WORK/imdb_real/$d" | wc -l)
    [[ $n == 12500 ]] || fail "real imdb: $d has $n files, expected 12500"
  done
  echo "imdb (bundled 50,000 reviews): ok"
fi

# ---- fashion ------------------------------------------------------------------------------------
FASHION=/usr/share/datasets/fashion-mnist
if [[ ! -f $FASHION/train-images-idx3-ubyte.gz ]]; then
  FASHION="$WORK/fashion_in"
  python3 - "$FASHION" <<'PY'
import gzip, os, struct, sys
import numpy as np
d = sys.argv[1]
os.makedirs(d)
rng = np.random.default_rng(0)
for prefix, n in (('train', 50003), ('t10k', 17)):
    with gzip.open(f'{d}/{prefix}-images-idx3-ubyte.gz', 'wb') as f:
        f.write(struct.pack('>IIII', 0x803, n, 28, 28) + rng.integers(0, 256, n * 784, np.uint8).tobytes())
    with gzip.open(f'{d}/{prefix}-labels-idx1-ubyte.gz', 'wb') as f:
        f.write(struct.pack('>II', 0x801, n) + rng.integers(0, 10, n, np.uint8).tobytes())
PY
fi
"$GEN" fashion --input_dir="$FASHION" --out_dir="$WORK/cifar" --progress=none
python3 - "$WORK/cifar" "$FASHION" <<'PY' || fail "fashion files"
import gzip, sys
import numpy as np
out, src = sys.argv[1], sys.argv[2]
def idx(name, header):
    return np.frombuffer(gzip.open(f'{src}/{name}').read()[header:], np.uint8)
for prefix, files in (('train', [f'data_batch_{b}.bin' for b in range(1, 6)]),
                      ('t10k', ['test_batch.bin'])):
    imgs = idx(f'{prefix}-images-idx3-ubyte.gz', 16).reshape(-1, 28, 28)
    labels = idx(f'{prefix}-labels-idx1-ubyte.gz', 8)
    recs = np.concatenate([np.fromfile(f'{out}/{f}', np.uint8).reshape(-1, 3073) for f in files])
    n = 50000 if prefix == 'train' else len(labels)
    assert len(recs) == n, (prefix, len(recs))
    if prefix == 'train':
        for f in files:
            assert np.fromfile(f'{out}/{f}', np.uint8).size == 10000 * 3073
    assert (recs[:, 0] == labels[:n]).all()
    planes = recs[:, 1:].reshape(n, 3, 32, 32)
    assert (planes[:, 0] == planes[:, 1]).all() and (planes[:, 0] == planes[:, 2]).all()
    assert (planes[:, 0, 2:30, 2:30] == imgs[:n]).all()
    border = planes[:, 0].copy()
    border[:, 2:30, 2:30] = 0
    assert not border.any()
    # The sCIFAR grayscale rule (Pillow's) gives the Fashion pixel back exactly.
    r, g, b = (planes[:, c].astype(np.int64) for c in range(3))
    assert ((r * 19595 + g * 38470 + b * 7471 + 32768) >> 16 == planes[:, 0]).all()
print('fashion: ok')
PY

# ---- aan ----------------------------------------------------------------------------------------
"$GEN" aan --corpus_dir="$CORPUS" --out_dir="$WORK/aan" --pairs=200 --seed=1 --progress=none
"$GEN" aan --corpus_dir="$CORPUS" --out_dir="$WORK/aan2" --pairs=200 --seed=1 --progress=none
diff -r "$WORK/aan" "$WORK/aan2" >/dev/null || fail "aan output differs between runs"
python3 - "$WORK/aan" "$CORPUS" <<'PY' || fail "aan files"
import glob, sys
out, corpus = sys.argv[1], sys.argv[2]
norm = lambda s: ' '.join(s.split())
# Bytes as latin-1 (1:1): the books are not all UTF-8, and the task is byte level anyway.
books = {p: norm(open(p, encoding='latin-1').read()) for p in sorted(glob.glob(f'{corpus}/*.txt'))}
def book_of(text):
    hits = [p for p, b in books.items() if norm(text) in b]
    assert len(hits) == 1, (len(hits), text[:60])
    return hits[0]
texts_by_id, split_ids = {}, {}
for split, n in (('train', 160), ('eval', 20), ('test', 20)):
    lines = open(f'{out}/new_aan_pairs.{split}.tsv', encoding='latin-1').read().split('\n')
    assert lines[-1] == '' and len(lines) == n + 1, (split, len(lines))
    positives = 0
    split_ids[split] = set()
    for line in lines[:-1]:
        f = line.split('\t')
        assert len(f) == 5, len(f)
        label = int(float(f[0]))
        assert label in (0, 1)
        positives += label
        for doc_id, text in ((f[1], f[3]), (f[2], f[4])):
            assert 2000 <= len(text) <= 4000, len(text)
            assert texts_by_id.setdefault(doc_id, text) == text, doc_id
            split_ids[split].add(doc_id)
        assert (book_of(f[3]) == book_of(f[4])) == (label == 1), line[:100]
    assert positives == n // 2, (split, positives)
assert not (split_ids['train'] & split_ids['eval']) and not (split_ids['train'] & split_ids['test'])
print('aan: ok')
PY

echo "PASS"
