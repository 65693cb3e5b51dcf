"The fastai metrics' arguments: `default_metrics` passes `sigmoid` (and its other arguments) to every metric it builds."
import pytest, torch
from sklearn.metrics import f1_score
from fastai_multilabel.all import *
from helpers import feed_all, rand_data

VOCAB = ['cat', 'dog', 'bird', 'fish', 'rare', 'role::program']

def test_default_metrics_on_probabilities_equal_those_on_logits():
    logits, targs = rand_data(n=203)
    probs, t = logits.sigmoid(), targs.numpy()
    on_probs, on_logits = default_metrics(VOCAB, sigmoid=False), default_metrics(VOCAB)
    assert [m.sigmoid for m in on_probs] == [False] * 9 and [m.sigmoid for m in on_logits] == [True] * 9
    assert [m.name for m in on_probs] == [m.name for m in on_logits]   # the name states what changes the value, not the input's kind
    got = feed_all(on_probs, probs, targs, bs=32)
    assert got == pytest.approx(feed_all(on_logits, logits, targs, bs=32))
    assert got[0] == pytest.approx(f1_score(t, probs > .5, average='macro', zero_division=0))
    assert got[1] == pytest.approx(f1_score(t, probs > .5, average='micro', zero_division=0))
    assert got[2] == pytest.approx(((probs > .5) == targs.bool()).double().mean().item())
    assert got[3 + 1] == pytest.approx(f1_score(t[:, 1], probs[:, 1] > .5, zero_division=0))   # f1_dog_t0p5
    assert [m(probs, targs) for m in on_probs] == pytest.approx(got)   # called on tensors as well

def test_default_metrics_pass_thresh_and_ignore_index_along_with_sigmoid():
    logits, targs = rand_data(n=120)
    targs[::7, 2] = -1
    thresh = torch.tensor([.2, .3, .4, .5, .6, .7])
    ms = default_metrics(VOCAB, thresh=thresh, sigmoid=False, ignore_index=-1)
    assert all(m.ignore_index == -1 and not m.sigmoid for m in ms)
    known = targs[:, 2] != -1
    p, t = logits.sigmoid()[known, 2] > .4, targs[known, 2].numpy()
    assert feed_all(ms, logits.sigmoid(), targs)[3 + 2] == pytest.approx(f1_score(t, p, zero_division=0))   # f1_bird at 0.4

def test_default_metrics_check_sigmoid():
    with pytest.raises(TypeError, match=r"Expected `sigmoid` to be True or False, but got 'no'"): default_metrics(sigmoid='no')
