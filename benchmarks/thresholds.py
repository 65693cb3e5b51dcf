"""Threshold search: exact and binned against scikit-learn's naive 99-point loops, torchmetrics' PR curves and one sort.

For each size, with 1 and 2 threads: seconds of our exact per-label, global-micro and global-macro searches, of one
`torch.sort(dim=0)` of the same tensor, of torchmetrics' `MultilabelPrecisionRecallCurve` (exact, and binned with 100
thresholds fed in chunks of 1024), of our binned search as `ThresholdSearch(n_bins=1024)` runs it (batches of 64,
buffered into updates of 65,536 scores; also with 256 bins) and of the
one-pass metric reference over the same batches; the naive scikit-learn loops (`f1_score(average=None)`, and `'micro'`, at
0.01..0.99) are timed on 10 of their 99 thresholds and scaled by 9.9 (scikit-learn is single-threaded). Then the mean best
F1 each approach finds. Usage: python benchmarks/thresholds.py [--sizes 100000x17,100000x100,20000x1000]
"""
import argparse, time
import numpy as np, torch
from sklearn.metrics import f1_score
from torchmetrics.classification import MultilabelPrecisionRecallCurve
from fastai_multilabel.all import best_thresholds, best_thresholds_binned, ThresholdHistogram, BufferedUpdate

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

def binned(logits, targs, bs=64, n_bins=1024):
    "The binned search as ThresholdSearch(n_bins=...) runs it: batches of `bs` buffered into updates of 65,536 scores."
    h = BufferedUpdate(ThresholdHistogram(n_bins))
    for i in range(0, len(logits), bs): h.update(logits[i:i+bs], targs[i:i+bs])
    h.flush()
    return best_thresholds_binned(h.stream.compute())[1]

def one_pass(logits, targs, bs=64):
    tp = pp = pos = 0
    for i in range(0, len(logits), bs):
        p, t = logits[i:i+bs] > 0., targs[i:i+bs].bool()
        tp = tp + (p & t).sum(0); pp = pp + p.sum(0); pos = pos + t.sum(0)
    return tp

def grid_best(probs, targs):
    "Best F1 per label over the 99-point grid (the values the naive scikit-learn loop finds), computed with torch."
    t = targs.bool(); P = t.sum(0).double(); best = torch.zeros(probs.shape[1], dtype=torch.float64)
    for th in GRID:
        pm = probs > th; tp = (pm & t).sum(0).double()
        best = torch.maximum(best, 2*tp / (P + pm.sum(0)).clamp_min(1))
    return best

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', default='100000x17,100000x100,20000x1000')
    a = ap.parse_args()
    for size in a.sizes.split(','):
        n, l = map(int, size.split('x'))
        logits, probs, targs = data(n, l)
        y = targs.numpy().astype(int)
        t0 = time.perf_counter()
        for th in GRID[::10]: f1_score(y, (probs.numpy() > th), average=None, zero_division=0)
        naive_pl = (time.perf_counter() - t0) * 9.9
        t0 = time.perf_counter()
        for th in GRID[::10]: f1_score(y, (probs.numpy() > th), average='micro', zero_division=0)
        naive_gl = (time.perf_counter() - t0) * 9.9
        print(f'\n== {n} samples x {l} labels; naive scikit-learn 99-point loops: per-label {naive_pl:.1f} s, global micro {naive_gl:.1f} s (10 points x 9.9)')
        found = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            t_sort, _ = timed(lambda: probs.sort(dim=0))
            t_pl, (_, sc) = timed(lambda: best_thresholds(probs, targs)); found['ours exact per-label'] = sc.mean().item()
            t_gm, (_, sc) = timed(lambda: best_thresholds(probs, targs, per_label=False)); found['ours exact global micro'] = sc.item()
            t_gM, (_, sc) = timed(lambda: best_thresholds(probs, targs, per_label=False, average='macro')); found['ours exact global macro'] = sc.item()
            t_tme, sc = timed(lambda: tm_best(probs, targs, None), 1); found['torchmetrics exact per-label'] = sc.mean().item()
            t_tmb, sc = timed(lambda: tm_best(probs, targs, 100, 1024), 1); found['torchmetrics binned(100) per-label'] = sc.mean().item()
            t_bin, sc = timed(lambda: binned(logits, targs)); found['ours binned(1024) per-label'] = sc.mean().item()
            t_b256, sc = timed(lambda: binned(logits, targs, n_bins=256)); found['ours binned(256) per-label'] = sc.mean().item()
            t_one, _ = timed(lambda: one_pass(logits, targs))
            print(f'-- {threads} thread(s)')
            print(f'  one torch.sort(dim=0)           {t_sort:8.3f} s')
            print(f'  ours exact per-label            {t_pl:8.3f} s  = {t_pl/t_sort:5.2f}x the sort, {naive_pl/t_pl:7.0f}x faster than the naive loop, '
                  f'{t_tme/t_pl:5.1f}x faster than torchmetrics exact')
            print(f'  ours exact global micro         {t_gm:8.3f} s  {naive_gl/t_gm:7.0f}x faster than the naive loop')
            print(f'  ours exact global macro         {t_gM:8.3f} s')
            print(f'  torchmetrics PR curve exact     {t_tme:8.3f} s')
            print(f'  torchmetrics PR curve binned    {t_tmb:8.3f} s  (100 thresholds, chunks of 1024)')
            print(f'  ours binned(1024), batches of 64 {t_bin:7.3f} s  = {t_bin/t_one:5.2f}x the one-pass metric reference ({t_one:.3f} s)')
            print(f'  ours binned(256), batches of 64 {t_b256:8.3f} s  = {t_b256/t_one:5.2f}x the one-pass metric reference')
        found['99-point grid per-label (naive loop)'] = grid_best(probs, targs).mean().item()
        print('  mean best F1 found: ' + '; '.join(f'{k} {v:.5f}' for k, v in found.items()))
        assert found['ours exact per-label'] >= found['99-point grid per-label (naive loop)'] - 1e-12

if __name__ == '__main__': main()
