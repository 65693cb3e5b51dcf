"Exact threshold search against brute force over every cut; the binned search within its documented bound."
import math, pytest, torch
import numpy as np
from hypothesis import given, settings, strategies as st, HealthCheck
from sklearn.metrics import fbeta_score
from fastai_multilabel.all import *
from fastai_multilabel.thresholds import scores_at, bin_edges, hist_codes
from helpers import brute_best as brute

def applied(probs, targs, th, beta, metric, per_label, average):
    if per_label: return scores_at(probs, targs, th, beta, metric, 0.)
    if average == 'macro': return scores_at(probs, targs, th, beta, metric, 0.).mean()
    return scores_at(probs.reshape(-1, 1), targs.reshape(-1, 1), th, beta, metric, 0.)[0]

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 30), n_labels=st.integers(1, 5), levels=st.sampled_from([3, 10, 1000]), p=st.floats(0, 1),
       beta=st.sampled_from([0.5, 1., 2.]), metric=st.sampled_from(['fbeta', 'accuracy']), per_label=st.booleans(),
       average=st.sampled_from(['micro', 'macro']), seed=st.integers(0, 10**6))
def test_exact_against_brute_force(n, n_labels, levels, p, beta, metric, per_label, average, seed):
    g = torch.Generator().manual_seed(seed)
    probs = (torch.rand(n, n_labels, generator=g) * levels).round() / levels   # few levels: heavy ties
    if seed % 2: probs = probs.double()   # float32 and float64 keys
    targs = (torch.rand(n, n_labels, generator=g) < p).float()
    th, sc = best_thresholds(probs, targs, beta, per_label=per_label, metric=metric, average=average)
    assert torch.allclose(sc, brute(probs, targs, beta, metric, per_label, average))
    assert torch.allclose(applied(probs, targs, th, beta, metric, per_label, average), sc)  # the threshold reproduces it
    assert ((th >= 0) & (th <= 1)).all()

def test_label_without_positives_and_with_only_positives():
    probs = torch.tensor([[.9, .2, .7], [.4, .6, .1], [.3, .8, .5]])
    targs = torch.tensor([[0, 1, 1], [0, 1, 0], [0, 1, 1]])
    th, sc = best_thresholds(probs, targs)
    assert th[0] == 1. and sc[0] == 0.                 # no positives: predict none, score zero_division
    assert th[1] == 0. and sc[1] == 1.                 # only positives: predict all
    assert th[2] == pytest.approx(.3) and sc[2] == 1.  # between .1 and .5
    assert best_thresholds(probs, targs, zero_division=1.)[1][0] == 1.

def test_single_sample():
    th, sc = best_thresholds(torch.tensor([[.3, .8]]), torch.tensor([[1, 0]]))
    assert th.tolist() == [0., 1.] and sc.tolist() == [1., 0.]

def test_never_below_the_99_point_grid_and_sklearn_agrees():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(2000, 8, generator=g); targs = (torch.rand(2000, 8, generator=g) < probs * .6).float()
    th, sc = best_thresholds(probs, targs, beta=2.)
    grid = np.array([fbeta_score(targs.numpy(), (probs > t).numpy(), beta=2., average=None, zero_division=0) for t in np.arange(.01, 1, .01)]).max(0)
    assert (sc.numpy() >= grid - 1e-12).all() and (sc.numpy() > grid + 1e-6).any()
    assert np.allclose(fbeta_score(targs.numpy(), (probs > th).numpy(), beta=2., average=None), sc.numpy())

def test_logits_and_min_pos():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(400, 5, generator=g) * 3; targs = (torch.rand(400, 5, generator=g) < .2).float()
    targs[:, 4] = 0; targs[:2, 4] = 1
    th, sc = best_thresholds(logits, targs, sigmoid=True, min_pos=3)
    gth, _ = best_thresholds(logits, targs, sigmoid=True, per_label=False)
    assert th[4] == pytest.approx(gth.item()) and th[0] != th[4]
    assert torch.allclose(sc, scores_at(logits.sigmoid(), targs, th, 1., 'fbeta', 0.))

@pytest.mark.parametrize('n_bins', [10, 100, 1000, 1024])
@pytest.mark.parametrize('beta', [0.5, 1., 2.])
def test_binned_within_bound(n_bins, beta):
    g = torch.Generator().manual_seed(n_bins)
    logits = torch.randn(5000, 6, generator=g) * 2; targs = (torch.rand(5000, 6, generator=g) < logits.sigmoid() * .5).float()
    h = ThresholdHistogram(n_bins)
    for i in range(0, 5000, 128): h.update(logits[i:i+128], targs[i:i+128])
    hist = h.compute()
    th, sc = best_thresholds_binned(hist, beta)
    ex_th, ex_sc = best_thresholds(logits, targs, beta, sigmoid=True)
    assert (sc <= ex_sc + 1e-9).all() and (sc >= ex_sc - binned_error_bound(hist, beta)).all()
    assert torch.allclose(sc, scores_at(logits.sigmoid(), targs, th, beta, 'fbeta', 0.))     # exact at the returned edge
    if n_bins >= 1000: assert (ex_sc - sc).max() < 0.01

def test_binned_sums_across_batches_like_processes():
    "Histograms of two halves add up to the histogram of the whole: the state is sum-reducible."
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(300, 4, generator=g); targs = (torch.rand(300, 4, generator=g) < .3).float()
    parts = []
    for sl in (slice(0, 100), slice(100, 300)):
        h = ThresholdHistogram(50); h.update(logits[sl], targs[sl]); parts.append(h.compute())
    whole = ThresholdHistogram(50); whole.update(logits, targs)
    assert torch.equal(parts[0] + parts[1], whole.compute())

def test_bad_input():
    p, t = torch.rand(10, 3), (torch.rand(10, 3) > .5).float()
    with pytest.raises(ValueError, match="Expected `beta` > 0, but got -1"): best_thresholds(p, t, beta=-1)
    with pytest.raises(ValueError, match=r"shape of `preds` \(10, 3\), but got \(10, 2\)"): best_thresholds(p, t[:, :2])
    with pytest.raises(ValueError, match="only 0 and 1"): best_thresholds(p, t + 1)
    with pytest.raises(ValueError, match="NaN or infinite"): best_thresholds(p.masked_fill(p > .9, float('nan')), t)
    with pytest.raises(ValueError, match="`metric` to be one of"): best_thresholds(p, t, metric='auc')
    with pytest.raises(ValueError, match="`average` to be one of"): best_thresholds(p, t, per_label=False, average='weighted')
    with pytest.raises(ValueError, match="at least one sample"): best_thresholds(p[:0], t[:0])

def codes_by_hand(preds, targs, n_bins, sigmoid):
    "Each score's histogram index, from the bin rule ((i-1)/n_bins, i/n_bins] read off float32 edges, label by label."
    p = preds.to(torch.promote_types(preds.dtype, torch.float32))  # half precision in float32, float64 as it is
    p = (p.sigmoid() if sigmoid else p).nan_to_num(0., 1., 0.).clamp(0, 1)
    bins = (bin_edges(n_bins, p.dtype)[None, None] < p[..., None]).sum(-1)  # edges below the score
    labels = torch.arange(p.shape[1])[None]
    return ((labels * (n_bins+1) + bins) * 2 + targs.long()).T.reshape(-1)

@pytest.mark.parametrize('dtype', [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize('n_bins', [1024, 200])
@pytest.mark.parametrize('sigmoid', [False, True])
def test_hist_codes_by_hand_with_and_without_reused_buffers(dtype, n_bins, sigmoid):
    g = torch.Generator().manual_seed(n_bins + sigmoid)
    work = {}
    for n in (300, 50, 300):  # a smaller chunk reuses the buffers, a larger one grows them
        probs = torch.rand(n, 7, generator=g)
        probs[:20] = bin_edges(n_bins)[torch.randint(0, n_bins+1, (20, 7), generator=g)]  # scores on the edges
        preds = (torch.logit(probs.double()) if sigmoid else probs).to(dtype)
        targs = torch.rand(n, 7, generator=g) < .3
        want = codes_by_hand(preds, targs, n_bins, sigmoid)
        for t in (targs, targs.float()):
            assert torch.equal(hist_codes(preds, t, n_bins, sigmoid).long(), want)
            assert torch.equal(hist_codes(preds, t, n_bins, sigmoid, work=work).long(), want)
    assert set(work) == {'p', 'codes'} and len(work['p']) == 300 * 7

def test_hist_codes_past_float32_exact_codes():
    "8,200 labels x 1,025 bins x 2 > 2**24: the codes are computed in int64."
    g = torch.Generator().manual_seed(0)
    probs, targs = torch.rand(3, 8200, generator=g), torch.rand(3, 8200, generator=g) < .5
    for t in (targs, targs.float(), targs.double()):
        codes = hist_codes(probs, t)
        assert codes.dtype == torch.int64 and torch.equal(codes, codes_by_hand(probs, targs, 1024, False))
    assert codes.max() >= 2**24
    h = ThresholdHistogram(sigmoid=False)
    h.update(probs, targs.float())  # float targets through a stream
    assert torch.equal(h.compute()[..., 1].sum(1), targs.sum(0))

def test_hist_codes_buffers_bounded_and_not_pickled(monkeypatch):
    import pickle, copy
    from fastai_multilabel import thresholds
    monkeypatch.setattr(thresholds, 'WORK_MAX', 1000)
    work = {}
    probs, targs = torch.rand(100, 10), torch.rand(100, 10) < .5
    a = hist_codes(probs, targs, work=work)
    assert set(work) == {'p', 'codes'} and work['codes'].data_ptr() == a.data_ptr()
    big = torch.rand(101, 10)
    b = hist_codes(big, targs[:1].expand(101, -1), work=work)  # 1,010 entries: above WORK_MAX, allocated and not kept
    assert len(work['p']) == 1000 and b.data_ptr() != work['codes'].data_ptr()
    assert torch.equal(b.long(), codes_by_hand(big, targs[:1].expand(101, -1), 1024, False))
    h = ThresholdHistogram(sigmoid=False)
    h.update(probs, targs.float())
    assert h._work and not pickle.loads(pickle.dumps(h))._work and not copy.deepcopy(h)._work
    h2 = pickle.loads(pickle.dumps(h)); h2.update(probs, targs.float())
    assert torch.equal(h2.compute(), 2 * h.compute())
    state = h.__getstate__(); del state['_work']  # a stream pickled before streams kept buffers
    h3 = ThresholdHistogram.__new__(ThresholdHistogram); h3.__setstate__(state); h3.update(probs, targs.float())
    assert torch.equal(h3.compute(), 2 * h.compute())
