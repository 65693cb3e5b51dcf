"Every thresholded metric against scikit-learn, over averages, logits/probabilities, thresholds and uneven batches."
import math, pytest, torch
from types import SimpleNamespace
import numpy as np
from hypothesis import given, settings, strategies as st, HealthCheck
from sklearn.metrics import accuracy_score, fbeta_score, precision_score, recall_score, f1_score
from fastai_multilabel.all import *
from helpers import feed, feed_all, rand_data

THRESHES = [0.5, 0.2, 0.85, torch.tensor([0.1, 0.3, 0.5, 0.6, 0.8, 0.5])]

def pred_mask(preds, thresh): return (preds.sigmoid() > thresh).numpy()

@pytest.mark.parametrize('average', ['micro', 'macro', 'weighted', 'samples'])
@pytest.mark.parametrize('beta', [1., 0.5, 2.])
@pytest.mark.parametrize('thresh', THRESHES, ids=['t0p5', 't0p2', 't0p85', 'tvec'])
@pytest.mark.parametrize('bs', [200, 64, 7])
def test_fscore(average, beta, thresh, bs):
    preds, targs = rand_data()
    got = feed(FScore(beta, thresh, average), preds, targs, bs)
    exp = fbeta_score(targs.numpy(), pred_mask(preds, thresh), beta=beta, average=average, zero_division=0)
    assert got == pytest.approx(exp, abs=1e-9)

@pytest.mark.parametrize('average', ['micro', 'macro', 'weighted', 'samples'])
@pytest.mark.parametrize('zero_division', [0., 1.])
@pytest.mark.parametrize('thresh', THRESHES, ids=['t0p5', 't0p2', 't0p85', 'tvec'])
@pytest.mark.parametrize('bs', [64, 7])
def test_jaccard_and_hamming_loss(average, zero_division, thresh, bs):
    from sklearn.metrics import jaccard_score, hamming_loss
    preds, targs = rand_data(seed=2)
    got = feed_all([Jaccard(thresh, average, zero_division=zero_division), HammingLoss(thresh)], preds, targs, bs)
    pm = pred_mask(preds, thresh)
    exp = [jaccard_score(targs.numpy(), pm, average=average, zero_division=zero_division), hamming_loss(targs.numpy(), pm)]
    assert got == pytest.approx(exp, abs=1e-9)

@pytest.mark.parametrize('average', ['micro', 'macro', 'weighted', 'samples'])
@pytest.mark.parametrize('zero_division', [0., 1.])
def test_fscore_probabilities_zero_division(average, zero_division):
    preds, targs = rand_data(seed=1)
    probs = preds.sigmoid()
    got = feed(FScore(thresh=0.4, average=average, sigmoid=False, zero_division=zero_division), probs, targs, 50)
    exp = f1_score(targs.numpy(), (probs > 0.4).numpy(), average=average, zero_division=zero_division)
    assert got == pytest.approx(exp, abs=1e-9)

def test_fscore_nan_zero_division_ignores_undefined_labels():
    preds, targs = rand_data(seed=2)
    preds[:, -1] = -10  # the empty label is never predicted: 0/0
    got = feed(FScore(average='macro', zero_division=float('nan')), preds, targs)
    exp = f1_score(targs.numpy(), pred_mask(preds, 0.5), average='macro', zero_division=np.nan)
    assert got == pytest.approx(exp, abs=1e-9)

@pytest.mark.parametrize('thresh', THRESHES, ids=['t0p5', 't0p2', 't0p85', 'tvec'])
@pytest.mark.parametrize('bs', [200, 33])
def test_accuracies(thresh, bs):
    preds, targs = rand_data(seed=3)
    pm, t = pred_mask(preds, thresh), targs.numpy()
    assert feed(ThresholdAccuracy(thresh), preds, targs, bs) == pytest.approx((pm == t).mean())
    assert feed(SubsetAccuracy(thresh), preds, targs, bs) == pytest.approx(accuracy_score(t, pm))

@pytest.mark.parametrize('kind,sk', [(PerLabelRecall, recall_score), (PerLabelPrecision, precision_score), (PerLabelFScore, f1_score)])
@pytest.mark.parametrize('thresh', [0.5, THRESHES[-1]], ids=['t0p5', 'tvec'])
def test_per_label(kind, sk, thresh):
    preds, targs = rand_data(seed=4)
    cols = kind([f'l{i}' for i in range(6)], thresh=thresh)
    got = feed_all(cols, preds, targs, 64)
    assert got == pytest.approx(sk(targs.numpy(), pred_mask(preds, thresh), average=None, zero_division=0).tolist())
    assert cols[0]._pass is cols[-1]._pass and cols[0]._pass.stats.n.item() == 200  # counted once, not once per column

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# n_labels >= 2: scikit-learn reads a one-column indicator as binary, not multi-label
@given(n=st.integers(1, 40), n_labels=st.integers(2, 7), p=st.floats(0, 1), bs=st.integers(1, 50),
       thresh=st.floats(0, 1), average=st.sampled_from(['micro', 'macro', 'weighted', 'samples']), seed=st.integers(0, 10**6))
def test_fscore_hypothesis(n, n_labels, p, bs, thresh, average, seed):
    g = torch.Generator().manual_seed(seed)
    probs = torch.rand(n, n_labels, generator=g).double()
    targs = (torch.rand(n, n_labels, generator=g) < p).int()
    got = feed(FScore(thresh=thresh, average=average, sigmoid=False), probs, targs, bs)
    exp = f1_score(targs.numpy(), (probs > thresh).numpy(), average=average, zero_division=0)
    assert got == pytest.approx(exp, abs=1e-9)
    assert feed(ThresholdAccuracy(thresh, sigmoid=False), probs, targs, bs) == pytest.approx(((probs > thresh).int() == targs).double().mean().item())

def test_targets_as_bool_int_and_fastai_tensor():
    from fastai.torch_core import TensorMultiCategory
    preds, targs = rand_data(seed=5)
    exp = feed(FScore(), preds, targs)
    for t in (targs.bool(), targs.long(), TensorMultiCategory(targs)):
        assert feed(FScore(), preds, t, 64) == pytest.approx(exp)

def test_logit_rule_matches_sigmoid_rule_at_extremes():
    "On logits the metric compares with logit(thresh): the same decision as sigmoid(x) > thresh."
    preds = torch.tensor([[-40., -3., 0., 0.4054651, 3., 40.]])
    targs = torch.ones(1, 6)
    for t in (0., 0.2, 0.5, 0.6, 0.9, 1.):
        exp = (preds.double().sigmoid() > t).double().mean().item()
        assert feed(ThresholdAccuracy(t), preds, targs) == pytest.approx(exp)
