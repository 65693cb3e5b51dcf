"""Threshold search: exact and binned against scikit-learn's naive 99-point loops, torchmetrics' PR curves and one sort.

For each size, with 1 and 2 threads: seconds of our exact per-label, global-micro and global-macro searches, of one
`torch.sort(dim=0)` of the same tensor, of torchmetrics' `MultilabelPrecisionRecallCurve` (exact, and binned with 100
thresholds fed in chunks of 1024), of our binned search as `ThresholdSearch(n_bins=1024)` runs it (batches of 64,
buffered into updates of 65,536 scores; also with 256 bins) and of the
one-pass metric reference over the same batches; the naive scikit-learn loops (`f1_score(average=None)`, and `'micro'`, at
0.01..0.99) are timed on 10 of their 99 thresholds and scaled by 9.9 (scikit-learn is single-threaded). Then the mean best
F1 each approach finds. Batches for the binned search and the reference are distinct tensors (fresh per batch). Usage:
python benchmarks/thresholds.py [--sizes 100000x17,100000x100,20000x1000] [--threads 1,2] [--json] [--quick]
"""
import argparse, json, time
import numpy as np, torch
from sklearn.metrics import f1_score
from torchmetrics.classification import MultilabelPrecisionRecallCurve
from fastai_multilabel.all import best_thresholds, best_thresholds_binned, ThresholdHistogram
from fastai_multilabel.streaming import BufferedUpdate

GRID = np.arange(1, 100) / 100

def timed(f, reps=2):
    f(); best = float('inf')
    for _ in range(reps):
        t0 = time.perf_counter(); r = f(); best = min(best, time.perf_counter() - t0)
    return best, r

def data(n, l, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, l, generator=g) * 2
    targs = (torch.rand(n, l, generator=g) < torch.sigmoid(logits - 2.5)).float()  # ~10% positives, informative scores
    return logits, torch.sigmoid(logits), targs

def tm_best(probs, targs, thresholds, chunk=None):
    m = MultilabelPrecisionRecallCurve(num_labels=probs.shape[1], thresholds=thresholds, validate_args=False)
    for i in range(0, len(probs), chunk or len(probs)): m.update(probs[i:i+(chunk or len(probs))], targs[i:i+(chunk or len(probs))].long())
    p, r, _ = m.compute()
    if thresholds is not None: return (2*p*r / (p+r).clamp_min(1e-12)).nan_to_num(0.).max(1).values   # binned: (L, T+1) tensors
    return torch.stack([(2*pi*ri / (pi+ri).clamp_min(1e-12)).max() for pi, ri in zip(p, r)])

def batches(logits, targs, bs=64):
    "Distinct (fresh) tensors per batch, as a model's outputs are."
    return [(logits[i:i+bs].clone(), targs[i:i+bs].clone()) for i in range(0, len(logits), bs)]

def binned(bats, n_bins=1024):
    "The binned search as ThresholdSearch(n_bins=...) runs it: batches buffered into updates of `CHUNK` scores."
    h = BufferedUpdate(ThresholdHistogram(n_bins))
    for p, t in bats: h.update(p, t)
    h.flush()
    return best_thresholds_binned(h.stream.compute())[1]

def one_pass(bats):
    "The one-pass metric reference: compare logits with 0, sum per-label tp / predicted / positives."
    tp = pp = pos = 0
    for p, t in bats:
        p, t = p > 0., t.bool()
        tp = tp + (p & t).sum(0); pp = pp + p.sum(0); pos = pos + t.sum(0)
    return tp

def grid_best(probs, targs):
    "Best F1 per label over the 99-point grid (the values the naive scikit-learn loop finds), computed with torch."
    t = targs.bool(); P = t.sum(0).double(); best = torch.zeros(probs.shape[1], dtype=torch.float64)
    for th in GRID:
        pm = probs > th; tp = (pm & t).sum(0).double()
        best = torch.maximum(best, 2*tp / (P + pm.sum(0)).clamp_min(1))
    return best

def measure(n, l, threads, quick=False):
    "Seconds of each contender at `threads` torch threads, and the mean best F1 each finds."
    torch.set_num_threads(threads)
    logits, probs, targs = data(n, l)
    bats = batches(logits, targs)
    r, found = {}, {}
    r['sort'], _ = timed(lambda: probs.sort(dim=0), 3)
    r['exact_per_label'], (_, sc) = timed(lambda: best_thresholds(probs, targs), 3); found['ours exact per-label'] = sc.mean().item()
    r['binned_1024'], sc = timed(lambda: binned(bats), 3); found['ours binned(1024) per-label'] = sc.mean().item()
    r['one_pass'], _ = timed(lambda: one_pass(bats), 3)
    if not quick:
        y = targs.numpy().astype(int)
        t0 = time.perf_counter()
        for th in GRID[::10]: f1_score(y, (probs.numpy() > th), average=None, zero_division=0)
        r['naive_per_label'] = (time.perf_counter() - t0) * 9.9
        t0 = time.perf_counter()
        for th in GRID[::10]: f1_score(y, (probs.numpy() > th), average='micro', zero_division=0)
        r['naive_global'] = (time.perf_counter() - t0) * 9.9
        r['exact_global_micro'], (_, sc) = timed(lambda: best_thresholds(probs, targs, per_label=False)); found['ours exact global micro'] = sc.item()
        r['exact_global_macro'], (_, sc) = timed(lambda: best_thresholds(probs, targs, per_label=False, average='macro')); found['ours exact global macro'] = sc.item()
        r['tm_exact'], sc = timed(lambda: tm_best(probs, targs, None), 1); found['torchmetrics exact per-label'] = sc.mean().item()
        r['tm_binned_100'], sc = timed(lambda: tm_best(probs, targs, 100, 1024), 1); found['torchmetrics binned(100) per-label'] = sc.mean().item()
        r['binned_256'], sc = timed(lambda: binned(bats, n_bins=256)); found['ours binned(256) per-label'] = sc.mean().item()
        found['99-point grid per-label (naive loop)'] = grid_best(probs, targs).mean().item()
        assert found['ours exact per-label'] >= found['99-point grid per-label (naive loop)'] - 1e-12
    return r, found

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', default='100000x17,100000x100,20000x1000')
    ap.add_argument('--threads', default='1,2')
    ap.add_argument('--json', action='store_true', help='print one JSON object instead of the report')
    ap.add_argument('--quick', action='store_true', help='only the sort, the exact per-label and binned searches and the one-pass reference')
    a = ap.parse_args()
    out = {}
    for size in a.sizes.split(','):
        n, l = map(int, size.split('x'))
        for threads in map(int, a.threads.split(',')):
            r, found = measure(n, l, threads, a.quick)
            out[f'{size}/{threads}'] = r
            if a.json: continue
            print(f'\n== {n} samples x {l} labels, {threads} thread(s)')
            for k, v in r.items(): print(f'  {k:22} {v:8.3f} s')
            print(f"  exact per-label = {r['exact_per_label']/r['sort']:.2f}x one sort(dim=0); binned(1024) = {r['binned_1024']/r['one_pass']:.2f}x the one-pass reference")
            if not a.quick:
                print(f"  exact per-label {r['naive_per_label']/r['exact_per_label']:.0f}x faster than the naive loop, {r['tm_exact']/r['exact_per_label']:.1f}x than torchmetrics exact")
                print('  mean best F1 found: ' + '; '.join(f'{k} {v:.5f}' for k, v in found.items()))
    if a.json: print(json.dumps(out))

if __name__ == '__main__': main()
