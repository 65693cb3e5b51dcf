"Two gloo processes, each with an uneven share of the data: the synced value equals the single-process one."
import pytest, torch
from sklearn.metrics import f1_score
from fastai_multilabel.all import *
from helpers import feed, rand_data, run_procs

def _metrics(): return [FScore(average='macro'), FScore(average='micro'), FScore(average='samples'), ThresholdAccuracy(0.3), TopKAccuracy(2)]

def _worker(rank):
    preds, targs = rand_data(n=301)
    part = slice(0, 120) if rank == 0 else slice(120, 301)  # uneven shares
    return [feed(m, preds[part], targs[part], bs=32) for m in _metrics()]

def test_two_process_sync():
    res = run_procs(_worker)
    preds, targs = rand_data(n=301)
    exp = [feed(m, preds, targs, bs=32) for m in _metrics()]
    assert exp[0] == pytest.approx(f1_score(targs.numpy(), (preds.sigmoid() > .5).numpy(), average='macro', zero_division=0))
    assert res[0] == pytest.approx(exp) and res[1] == pytest.approx(exp)

def _call_worker(rank):
    "A metric called on tensors gives their value on this process alone, whether or not the others call it (no sync, no hang)."
    preds, targs = rand_data(n=100, seed=rank)
    return FScore()(preds, targs) if rank == 0 else None

def test_call_on_tensors_stays_local():
    r0, r1 = run_procs(_call_worker)
    preds, targs = rand_data(n=100, seed=0)
    assert r1 is None and r0 == pytest.approx(f1_score(targs.numpy(), (preds.sigmoid() > .5).numpy(), average='macro', zero_division=0))
