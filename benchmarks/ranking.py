"""Speed and memory of the streaming ranking metrics (mAP, ROC AUC) through fastai's Metric protocol, as benchmarks/metrics.py.

Each contender runs in a fresh process on the same seeded data (logits as model outputs, label-dependent positive rates
between 0.02 and 0.5 so every label has both classes), with `--threads` torch threads. Batches of 64 are distinct tensors,
targets are fastai `TensorMultiCategory`, and the set is fed as fastai's Recorder feeds it (`accumulate(learn)` of every
metric after every batch, `learn.metrics` holding the set). Each contender's process runs twice, interleaved with the
others, and the faster is kept. Prints seconds per epoch (best of --runs), peak extra memory (RSS sampled every 0.5 ms
above the level before the epoch), the size of the state kept, the value computed (mAP, or mAP/AUC) and the ratios.
Contenders: ours `AveragePrecision()` (1024-bin histogram), `[AveragePrecision(), RocAuc()]` (one histogram, one pass),
`AveragePrecision(n_bins=None)` (exact, keeps every score); fastai's `APScoreMulti`, `RocAucMulti` (keep every
prediction, scikit-learn at the end); torchmetrics `MultilabelAveragePrecision` exact and with thresholds=1024, and
`MultilabelAUROC` with thresholds=1024.
Targets: fastai_APScoreMulti / ours_AveragePrecision >= 10x; tm_AP_binned1024 / ours_AveragePrecision >= 3x; ours binned
within `ranking_error_bound` of the exact value; the state of ours independent of N.
torchmetrics' binned metrics build a (64, L, 1024) tensor per batch: ~0.4 s (100 labels) to ~4 s (1000 labels) per
batch here, so these two, still in their warm-up epoch after SLOW seconds, are timed on the batches fed by then, scaled to
the epoch, plus their compute (marked ~). Both sizes take ~15 minutes on 2 busy cores: run one size per invocation.
Usage: python benchmarks/ranking.py [--sizes 100000x100,20000x1000] [--threads 1[,2]] [--runs 3] [--json]
"""
import argparse, json, math, os, subprocess, sys, threading, time
from types import SimpleNamespace
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from metrics import BS, rss

SIZES = [(100_000, 100), (20_000, 1000)]
NAMES = ['ours_AveragePrecision', 'ours_AP_and_AUC', 'ours_AveragePrecision_exact', 'fastai_APScoreMulti', 'fastai_RocAucMulti',
         'tm_AP_exact', 'tm_AP_binned1024', 'tm_AUROC_binned1024']
SLOW, SAMPLED = 10, ('tm_AP_binned1024', 'tm_AUROC_binned1024')  # these, still in their warm-up after SLOW seconds, are timed on the batches fed by then
TARGETS = [('fastai_APScoreMulti', 'ours_AveragePrecision', 10), ('tm_AP_binned1024', 'ours_AveragePrecision', 3)]

def make(name, n_labels):
    "The contender `name`: a list of objects with reset/accumulate/value, fed as the Recorder does."
    import torch
    from torchmetrics.classification import MultilabelAveragePrecision, MultilabelAUROC
    from fastai.metrics import APScoreMulti, RocAucMulti
    from fastai_multilabel.all import AveragePrecision, RocAuc

    class TM:  # the thinnest fastai adapter of a torchmetrics metric (it applies the sigmoid to logits itself)
        def __init__(self, m): self.m = m
        def reset(self): self.m.reset()
        def accumulate(self, learn): self.m.update(learn.pred, learn.yb[0].as_subclass(torch.Tensor).long())
        @property
        def value(self): return self.m.compute()

    return {
        'ours_AveragePrecision': lambda: [AveragePrecision()],
        'ours_AP_and_AUC': lambda: [AveragePrecision(), RocAuc()],
        'ours_AveragePrecision_exact': lambda: [AveragePrecision(n_bins=None)],
        'fastai_APScoreMulti': lambda: [APScoreMulti()],  # sigmoid=True by default
        'fastai_RocAucMulti': lambda: [RocAucMulti()],
        'tm_AP_exact': lambda: [TM(MultilabelAveragePrecision(num_labels=n_labels))],
        'tm_AP_binned1024': lambda: [TM(MultilabelAveragePrecision(num_labels=n_labels, thresholds=1024))],
        'tm_AUROC_binned1024': lambda: [TM(MultilabelAUROC(num_labels=n_labels, thresholds=1024))],
    }[name]()

def batches(n, n_labels, seed=0):
    "Fresh batches of 64 (learner-like namespaces): logits informative of `TensorMultiCategory` targets, positive rates 0.02..0.5 by label."
    import torch
    from fastai.torch_core import TensorMultiCategory, to_detach
    g = torch.Generator().manual_seed(seed)
    rates = 0.02 + 0.48 * torch.rand(n_labels, generator=g)
    res = []
    for i in range(0, n, BS):
        s = min(BS, n - i)
        y = TensorMultiCategory((torch.rand(s, n_labels, generator=g) < rates).float())
        p = torch.randn(s, n_labels, generator=g) + 1.5 * y.as_subclass(torch.Tensor)
        res.append(SimpleNamespace(pred=p, yb=(y,), y=y, to_detach=to_detach, training=False))
    return res

def nbytes(x):
    "Bytes of the tensors in `x` (a tensor, or lists/tuples/dicts of them)."
    import torch
    if isinstance(x, torch.Tensor): return x.numel() * x.element_size()
    if isinstance(x, dict): x = x.values()
    return sum(map(nbytes, x)) if isinstance(x, (list, tuple, type({}.values()))) else 0

def state(m):
    "Bytes of the state `m` keeps at the end of an epoch."
    if hasattr(m, 'm'): return nbytes(m.m.metric_state)            # torchmetrics
    if hasattr(m, 'preds'): return nbytes([m.preds, m.targs])      # fastai's AccumMetric
    return nbytes(m._pass.stats.metric_state) if m._pass and m._pass.members[0] is m else 0  # ours: the leader's pass, shared

def bounds(m):
    "`ranking_error_bound` (ap, auc) of the histogram of our metric `m`'s pass, if it keeps one."
    from fastai_multilabel.ranking import ranking_error_bound
    hs = m._pass.stats.compute()['hists']
    return [x.item() for x in ranking_error_bound(hs[0])] if hs else None

def run_one(name, n, n_labels, threads, runs):
    "Time, peak extra memory, state size and value of one contender; printed as JSON."
    import torch
    torch.set_num_threads(threads)
    bs, mets = batches(n, n_labels), make(name, n_labels)
    for b in bs: b.metrics = mets
    def feed(k, limit=math.inf):
        "Reset, accumulate the first `k` batches (fewer if `limit` seconds pass first); how many were fed."
        for m in mets: m.reset()
        t0 = time.perf_counter()
        for i, b in enumerate(bs[:k]):
            for m in mets: m.accumulate(b)
            if time.perf_counter() - t0 > limit: return i + 1
        return k
    def epoch(k=len(bs)):
        "Seconds of an epoch (the first `k` batches timed, scaled to all of them, then the value) and the values."
        t0 = time.perf_counter(); feed(k); t1 = time.perf_counter()
        value = [float(m.value) for m in mets]
        return (t1 - t0) * len(bs) / k + time.perf_counter() - t1, value
    k = feed(len(bs), SLOW if name in SAMPLED else math.inf)  # warm up
    if k == len(bs): [m.value for m in mets]
    times = [epoch(k)[0] for _ in range(runs if k == len(bs) else 0)]
    base, peak, stop = rss(), [0], [False]
    def sample():
        while not stop[0]: peak[0] = max(peak[0], rss()); time.sleep(0.0005)
    th = threading.Thread(target=sample); th.start()
    t, value = epoch(k); stop[0] = True; th.join()
    print(json.dumps(dict(name=name, n=n, n_labels=n_labels, threads=threads, seconds=min(times or [t]), batches_timed=k, batches=len(bs),
                          peak_mb=max(0, peak[0] - base) / 2**20, state_bytes=sum(map(state, mets)), value=value,
                          bound=bounds(mets[0]) if name.startswith('ours') and name != 'ours_AveragePrecision_exact' else None)))

def ours_state(n, l):
    "Bytes of the state of `[AveragePrecision(), RocAuc()]` after n x l samples fed in batches of 4096."
    import torch
    from fastai_multilabel.all import AveragePrecision, RocAuc
    ms = [AveragePrecision(), RocAuc()]
    for m in ms: m.reset()
    for i in range(0, n, 4096):
        k = min(4096, n - i)
        b = SimpleNamespace(pred=torch.randn(k, l), yb=(torch.rand(k, l).round(),), metrics=ms)
        for m in ms: m.accumulate(b)
    ms[1].value
    return state(ms[0])

def measure(sizes, threads, runs):
    "{(n, l, threads): {name: result}} for every contender, each in its own process; a failure is kept as {'error': ...}."
    out = {}
    for n, l in sizes:
        for t in threads:
            res = {}
            for _ in range(2):  # two interleaved rounds, the faster kept: a load spike on this shared machine hits one process, not both
                for nm in NAMES:
                    p = subprocess.run([sys.executable, __file__, '--one', nm, str(n), str(l), str(t), str(runs)], capture_output=True, text=True)
                    if p.returncode: r = dict(name=nm, error=(p.stderr.strip().splitlines() or ['?'])[-1])
                    else: r = json.loads(p.stdout.strip().splitlines()[-1])
                    if nm not in res or 'error' in res[nm] or r.get('seconds', math.inf) < res[nm]['seconds']: res[nm] = r
            out[n, l, t] = res
    return out

def report(n, l, t, r, runs):
    print(f'\n== {n} samples x {l} labels ({-(-n // BS)} batches), {t} thread(s), best of {runs} epochs')
    print(f"{'contender':30}{'s/epoch':>10}{'peak MB':>10}{'state MB':>10}  value (mAP or mAP/AUC)")
    for nm, x in r.items():
        if 'error' in x: print(f'{nm:30}   failed: {x["error"]}'); continue
        mark = '~' if x['batches_timed'] < x['batches'] else ' '
        print(f"{nm:29}{mark}{x['seconds']:10.4f}{x['peak_mb']:10.1f}{x['state_bytes'] / 2**20:10.2f}  " + '/'.join(f'{v:.6f}' for v in x['value']))
    slow = {x['batches_timed'] for x in r.values() if x.get('batches_timed', math.inf) < x.get('batches', 0)}
    if slow: print(f"~ timed on the first {'/'.join(map(str, sorted(slow)))} batches (one epoch, no best of) and scaled to {-(-n // BS)}; "
                   "its value is over those batches only")
    s = {k: x['seconds'] for k, x in r.items() if 'error' not in x}
    for a, b, target in TARGETS:
        if a in s and b in s: print(f'{a} / {b}: {s[a] / s[b]:.1f}x (target >= {target}x: {"met" if s[a] / s[b] >= target else "MISSED"})')
    if {'fastai_APScoreMulti', 'fastai_RocAucMulti', 'ours_AP_and_AUC'} <= s.keys():
        print(f"(fastai_APScoreMulti + fastai_RocAucMulti) / ours_AP_and_AUC: {(s['fastai_APScoreMulti'] + s['fastai_RocAucMulti']) / s['ours_AP_and_AUC']:.1f}x")
    ours, ex = r.get('ours_AP_and_AUC', {}), r.get('ours_AveragePrecision_exact', {})
    fa = r.get('fastai_RocAucMulti', {})
    if 'bound' in ours and 'value' in ex:
        (ap, auc), (bap, bauc) = ours['value'], ours['bound']
        print(f"binned - exact: mAP {ap - ex['value'][0]:+.2e} (bound {bap:.2e}: {'within' if abs(ap - ex['value'][0]) <= bap else 'OUTSIDE'})"
              + (f", AUC {auc - fa['value'][0]:+.2e} vs fastai (bound {bauc:.2e}: {'within' if abs(auc - fa['value'][0]) <= bauc else 'OUTSIDE'})"
                 if 'value' in fa else ''))
    print(f'state of ours (AP + AUC, {l} labels): {ours_state(n, l)} bytes after {n} samples, {ours_state(n // 5, l)} after {n // 5}')

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', default=','.join(f'{n}x{l}' for n, l in SIZES))
    ap.add_argument('--threads', default='1', help='torch threads, or a comma-separated list')
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--json', action='store_true', help='print one JSON object instead of the tables')
    ap.add_argument('--one', nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one: return run_one(a.one[0], *map(int, a.one[1:]))
    sizes = [tuple(map(int, s.split('x'))) for s in a.sizes.split(',')]
    res = measure(sizes, [int(t) for t in a.threads.split(',')], a.runs)
    if a.json: return print(json.dumps({f'{n}x{l}/{t}': r for (n, l, t), r in res.items()}))
    print(f'batches of {BS} on the CPU, best of {a.runs} epochs, each contender in its own process twice')
    for (n, l, t), r in res.items(): report(n, l, t, r, a.runs)

if __name__ == '__main__': main()
