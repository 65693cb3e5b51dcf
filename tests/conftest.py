"Shared helpers: feeding fastai metrics without a Learner, and small synthetic multi-label data."
from types import SimpleNamespace
import torch

def feed(metric, preds, targs, bs=None, loss_func=None):
    "Run `metric` through fastai's protocol (reset, accumulate per batch, value) and return its value."
    metric.reset()
    bs = bs or len(preds)
    for i in range(0, len(preds), bs):
        metric.accumulate(SimpleNamespace(pred=preds[i:i+bs], yb=(targs[i:i+bs],), loss_func=loss_func))
    return metric.value

def rand_data(n=200, n_labels=6, p=0.3, seed=0, empty_label=True):
    "Logits and 0/1 float targets; the last label has no positives when `empty_label`."
    g = torch.Generator().manual_seed(seed)
    preds = torch.randn(n, n_labels, generator=g) * 2
    targs = (torch.rand(n, n_labels, generator=g) < p).float()
    if empty_label: targs[:, -1] = 0
    return preds, targs
