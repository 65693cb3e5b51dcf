"""Speed and memory of multi-label metrics through fastai's Metric protocol (reset, accumulate per batch of 64, value).

Each contender runs in a fresh process on the same seeded data. Prints seconds per epoch (best of 3), peak extra memory
(RSS sampled every 0.5 ms above the level before the epoch), and ratios against fastai, torchmetrics and a one-pass torch
reference measured in the same run. Usage: python benchmarks/metrics.py [--sizes 100000x17,100000x100,20000x1000]
"""
import argparse, json, os, subprocess, sys, threading, time
from types import SimpleNamespace

BS = 64
SIZES = [(100_000, 17), (100_000, 100), (20_000, 1000)]

def rss():
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

def make(name, n_labels):
    "The contender `name` as an object with reset/accumulate/value."
    import torch, torchmetrics
    from fastai.metrics import accuracy_multi, FBetaMulti, F1ScoreMulti, RecallMulti
    from fastai.learner import AvgMetric
    from fastai_multilabel.all import FScore, ThresholdAccuracy, PerLabelRecall

    class TM:  # the thinnest fastai adapter of a torchmetrics metric
        def __init__(self, m): self.m = m
        def reset(self): self.m.reset()
        def accumulate(self, learn): self.m.update(learn.pred.as_subclass(torch.Tensor), learn.yb[0].as_subclass(torch.Tensor).long())
        @property
        def value(self): return self.m.compute()

    class Reference:  # one pass: compare logits with logit(0.5) = 0, sum per-label counts, F1 at the end
        def reset(self): self.tp = self.pp = self.pos = 0
        def accumulate(self, learn):
            p, t = learn.pred.as_subclass(torch.Tensor) > 0., learn.yb[0].as_subclass(torch.Tensor).bool()
            self.tp = self.tp + (p & t).sum(0); self.pp = self.pp + p.sum(0); self.pos = self.pos + t.sum(0)
        @property
        def value(self): return (2 * self.tp / (self.pp + self.pos).clamp_min(1)).mean()

    class Cols:  # every column of a per-label metric list, as the Recorder calls them
        def __init__(self, cols): self.cols = cols
        def reset(self): [c.reset() for c in self.cols]
        def accumulate(self, learn): [c.accumulate(learn) for c in self.cols]
        @property
        def value(self): return [c.value for c in self.cols]

    return {
        'ours_FScore': lambda: FScore(),
        'ours_ThresholdAccuracy': lambda: ThresholdAccuracy(),
        'ours_PerLabelRecall': lambda: Cols(list(PerLabelRecall([f'l{i}' for i in range(n_labels)]))),
        'fastai_accuracy_multi': lambda: AvgMetric(accuracy_multi),
        'fastai_F1ScoreMulti': lambda: F1ScoreMulti(),
        'fastai_FBetaMulti': lambda: FBetaMulti(beta=1., average='macro'),
        'fastai_RecallMulti_none': lambda: RecallMulti(average=None),
        'tm_MultilabelFBetaScore': lambda: TM(torchmetrics.classification.MultilabelFBetaScore(beta=1., num_labels=n_labels)),
        'tm_MultilabelRecall_none': lambda: TM(torchmetrics.classification.MultilabelRecall(num_labels=n_labels, average=None)),
        'reference_one_pass': lambda: Reference(),
    }[name]()

def run_one(name, n, n_labels):
    "Time and peak extra memory of one contender; printed as JSON."
    import torch
    from fastai.torch_core import TensorMultiCategory, to_detach
    g = torch.Generator().manual_seed(0)
    preds = torch.randn(n, n_labels, generator=g)
    targs = (torch.rand(n, n_labels, generator=g) < 0.05).float()
    batches = [SimpleNamespace(pred=preds[i:i+BS], yb=(TensorMultiCategory(targs[i:i+BS]),), y=TensorMultiCategory(targs[i:i+BS]),
                           to_detach=to_detach, training=False)
               for i in range(0, n, BS)]
    def epoch(m):
        m.reset()
        for b in batches: m.accumulate(b)
        return m.value
    m = make(name, n_labels)
    epoch(m)  # warm up
    times = []
    for _ in range(3):
        t0 = time.perf_counter(); epoch(m); times.append(time.perf_counter() - t0)
    base, peak, stop = rss(), [0], [False]
    def sample():
        while not stop[0]: peak[0] = max(peak[0], rss()); time.sleep(0.0005)
    th = threading.Thread(target=sample); th.start()
    epoch(m); stop[0] = True; th.join()
    print(json.dumps(dict(name=name, n=n, n_labels=n_labels, seconds=min(times), peak_mb=max(0, peak[0] - base) / 2**20)))

NAMES = ['reference_one_pass', 'ours_FScore', 'ours_ThresholdAccuracy', 'ours_PerLabelRecall', 'fastai_accuracy_multi',
         'fastai_F1ScoreMulti', 'fastai_FBetaMulti', 'fastai_RecallMulti_none', 'tm_MultilabelFBetaScore', 'tm_MultilabelRecall_none']

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', default=','.join(f'{n}x{l}' for n, l in SIZES))
    ap.add_argument('--one', nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one: return run_one(a.one[0], int(a.one[1]), int(a.one[2]))
    import torch
    print(f'batches of {BS}, torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores')
    for size in a.sizes.split(','):
        n, l = map(int, size.split('x'))
        res = {}
        for nm in NAMES:
            out = subprocess.run([sys.executable, __file__, '--one', nm, str(n), str(l)], capture_output=True, text=True)
            if out.returncode: sys.exit(f'{nm} failed:\n{out.stderr}')
            res[nm] = json.loads(out.stdout.strip().splitlines()[-1])
        ref, ours = res['reference_one_pass']['seconds'], res['ours_FScore']['seconds']
        print(f'\n== {n} samples x {l} labels ({-(-n // BS)} batches)')
        print(f"{'metric':28}{'s/epoch':>10}{'peak MB':>10}{'x reference':>13}")
        for nm, r in res.items(): print(f"{nm:28}{r['seconds']:10.4f}{r['peak_mb']:10.1f}{r['seconds'] / ref:13.2f}")
        print(f"FScore speed-up: {res['fastai_F1ScoreMulti']['seconds'] / ours:.1f}x vs fastai F1ScoreMulti, "
              f"{res['fastai_FBetaMulti']['seconds'] / ours:.1f}x vs fastai FBetaMulti, "
              f"{res['tm_MultilabelFBetaScore']['seconds'] / ours:.1f}x vs torchmetrics MultilabelFBetaScore; "
              f"{ours / ref:.2f}x the one-pass reference")
        print(f"PerLabelRecall speed-up: {res['fastai_RecallMulti_none']['seconds'] / res['ours_PerLabelRecall']['seconds']:.1f}x vs fastai, "
              f"{res['tm_MultilabelRecall_none']['seconds'] / res['ours_PerLabelRecall']['seconds']:.1f}x vs torchmetrics")
    from fastai_multilabel.all import FScore
    for n, l in SIZES:  # state size does not depend on the number of samples
        m = FScore(); m.reset()
        for i in range(0, n, 4096):
            m.accumulate(SimpleNamespace(pred=torch.randn(min(4096, n - i), l), yb=(torch.zeros(min(4096, n - i), l),)))
        print(f'FScore state after {n} x {l}: {sum(t.numel() * t.element_size() for t in m.feed.stream.metric_state.values())} bytes')

if __name__ == '__main__': main()
