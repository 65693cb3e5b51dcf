"Shared test helpers (as fastai's test_utils): feeding metrics without a Learner, small data, learners, brute-force searches."
from types import SimpleNamespace
import torch
from fastai_multilabel.all import *
from fastai_multilabel.thresholds import scores_at

def feed(metric, preds, targs, bs=None, loss_func=None):
    "Run `metric` through fastai's protocol (reset, accumulate per batch, value) and return its value."
    metric.reset()
    bs = bs or len(preds)
    for i in range(0, len(preds), bs):
        metric.accumulate(SimpleNamespace(pred=preds[i:i+bs], yb=(targs[i:i+bs],), loss_func=loss_func))
    return metric.value

def feed_all(metrics, preds, targs, bs=None, loss_func=None):
    "Run `metrics` as one learner's Recorder does (reset all, then every metric on each batch); return their values."
    for m in metrics: m.reset()
    bs = bs or len(preds)
    for i in range(0, len(preds), bs):
        b = SimpleNamespace(pred=preds[i:i+bs], yb=(targs[i:i+bs],), loss_func=loss_func, metrics=metrics)
        for m in metrics: m.accumulate(b)
    return [m.value for m in metrics]

def rand_data(n=200, n_labels=6, p=0.3, seed=0, empty_label=True):
    "Logits and 0/1 float targets; the last label has no positives when `empty_label`."
    g = torch.Generator().manual_seed(seed)
    preds = torch.randn(n, n_labels, generator=g) * 2
    targs = (torch.rand(n, n_labels, generator=g) < p).float()
    if empty_label: targs[:, -1] = 0
    return preds, targs

def record(learn):
    "The last epoch's metric values of `learn` by name."
    return dict(zip(learn.recorder.metric_names[1:-1], learn.recorder.values[-1]))

def make_learn(metrics, n=700, n_labels=5, bs=64, **kw):
    "A linear multi-label learner on synthetic data; 175 validation samples, so the last batch is uneven."
    from fastai.basics import DataLoaders, Learner, BCEWithLogitsLossFlat, nn
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 10, generator=g)
    y = (x @ torch.randn(10, n_labels, generator=g) + torch.randn(n, n_labels, generator=g) > 1.2).float()
    ds = list(zip(x, y)); cut = n * 3 // 4
    dls = DataLoaders.from_dsets(ds[:cut], ds[cut:], bs=bs, device='cpu')
    torch.manual_seed(0)
    return Learner(dls, nn.Linear(10, n_labels), loss_func=kw.pop('loss_func', None) or BCEWithLogitsLossFlat(), metrics=metrics, **kw)

def brute_best(probs, targs, beta=1., metric='fbeta', per_label=True, average='micro'):
    "Best score over thresholds at 0, 1, every distinct score and every midpoint, the slow way."
    u = probs.unique()
    cands = torch.cat([torch.tensor([0., 1.], dtype=probs.dtype), u, (u[1:] + u[:-1]) / 2])
    if per_label: return torch.stack([scores_at(probs, targs, c, beta, metric, 0.) for c in cands]).max(0).values
    if average == 'macro': return torch.stack([scores_at(probs, targs, c, beta, metric, 0.).mean() for c in cands]).max()
    return torch.stack([scores_at(probs.reshape(-1, 1), targs.reshape(-1, 1), c, beta, metric, 0.)[0] for c in cands]).max()
