"""Thresholds chosen by a constraint (min_precision / min_recall) against a brute-force search over every cut, in
`best_thresholds`, `ThresholdSearch` and `tune_thresholds`; thresholds tuned on resampled halves (`n_splits`)."""
import math, warnings
import numpy as np, pytest, torch
from fastai_multilabel.all import *
from fastai_multilabel.thresholds import constrained_thresholds
from fastai_multilabel.callback.threshold import resampled_thresholds
from fastai_multilabel.data import load_debtags, debtags_dls  # the demo's data: not in `all`
from helpers import make_learn, record

def data(n=240, L=5, seed=0, ties=True):
    g = torch.Generator().manual_seed(seed)
    t = (torch.rand(n, L, generator=g) < .3).float()
    p = (torch.rand(n, L, generator=g) + t * torch.linspace(0, .9, L)) / 1.9
    if ties: p = (p * 20).round() / 20
    return p, t

def brute(p, t, kind, v):
    "Per label, by trying every threshold: (best score, decisions of the chosen threshold) or None where unreachable."
    u = p.unique(); cands = torch.cat([torch.tensor([0., 1.]), u, (u[1:] + u[:-1]) / 2]).sort(descending=True).values
    res = []
    for j in range(p.shape[1]):
        best = None
        for c in cands:  # from the highest threshold down: the first best wins (fewest predictions)
            pm = p[:, j] > c; tp = (pm & t[:, j].bool()).sum().item(); pp = pm.sum().item(); P = t[:, j].sum().item()
            if kind == 'precision' and pp and tp / pp >= v and (best is None or tp / P > best[0]): best = (tp / P, pm)
            if kind == 'recall' and P and tp / P >= v and best is None: best = (tp / pp if pp else 0., pm)
        res.append(best)
    return res

@pytest.mark.parametrize('kind,v', [('precision', .5), ('precision', .75), ('precision', .95), ('recall', .5), ('recall', .9), ('recall', 1.)])
def test_constrained_vs_brute_force(kind, v):
    p, t = data()
    t[:, 0] = 0  # a label without positives: recall undefined, precision unreachable
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        th, sc, met = constrained_thresholds(p, t, **{f'min_{kind}': v}, labels=list('abcde'))
    exp = brute(p, t, kind, v)
    for j, e in enumerate(exp):
        assert bool(met[j]) == (e is not None), j
        if e is None: assert th[j] == 1 and math.isnan(sc[j]); continue
        assert sc[j].item() == pytest.approx(e[0]), j
        assert torch.equal(p[:, j] > th[j], e[1]), j  # the same decisions as the brute force's choice
    assert len(w) == 1 and 'a' in str(w[0].message).split(': ')[-1]
    # best_thresholds delegates
    bt, bs = best_thresholds(p, t, **{f'min_{kind}': v})
    assert torch.equal(bt, th) and torch.equal(bs.isnan(), sc.isnan()) and torch.equal(bs[met], sc[met])

def test_global_and_unknown_entries():
    p, t = data(ties=False)
    th, rec, met = constrained_thresholds(p, t, min_precision=.8, per_label=False)
    e = brute(p.reshape(-1, 1), t.reshape(-1, 1), 'precision', .8)[0]
    assert rec.item() == pytest.approx(e[0]) and torch.equal(p.reshape(-1) > th, e[1])
    t2 = t.clone(); t2[::7, 2] = -1
    th2, r2, _ = constrained_thresholds(p, t2, min_recall=.7, ignore_index=-1)
    k = t2[:, 2] >= 0
    th3, r3, _ = constrained_thresholds(p[k, 2:3], t2[k, 2:3], min_recall=.7)
    assert th2[2] == th3[0] and r2[2].item() == pytest.approx(r3[0].item())

def test_bad_input():
    p, t = data()
    with pytest.raises(ValueError, match='Expected exactly one of `min_precision` and `min_recall`'): constrained_thresholds(p, t)
    with pytest.raises(ValueError, match='Expected `min_precision` to be a number in \\(0, 1\\], but got 1.5'): constrained_thresholds(p, t, min_precision=1.5)
    with pytest.raises(ValueError, match='Expected min_pos=0 with a constraint'): best_thresholds(p, t, min_recall=.5, min_pos=3)
    with pytest.raises(ValueError, match='Expected n_bins=None with a constraint'): ThresholdSearch(min_precision=.9, n_bins=256)
    with pytest.raises(ValueError, match='Expected `n_splits` to be an int >= 1'): resampled_thresholds(p, t, 0)

def test_threshold_search_and_tune_thresholds_with_constraint():
    cb = ThresholdSearch(per_label=True, min_precision=.6)
    learn = make_learn([FScore(thresh='tuned')], cbs=cb)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); learn.fit(1, .1)
    rec = record(learn)
    assert [c.name for c in cb.columns] == ['tuned_recall_at_p0p6_perlabel', 'tuned_thresh_perlabel_mean']
    probs, targs = learn.get_preds()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        th, r, met = constrained_thresholds(probs, targs, min_precision=.6)
        assert torch.equal(learn.loss_func.thresh, th)
        assert rec['tuned_recall_at_p0p6_perlabel'] == pytest.approx(r.nanmean().item())
        table = learn.tune_thresholds(min_recall=.8, apply=False)
    assert list(table.columns) == ['thresh', 'precision_at_r0p8', 'support']
    th2, pr, _ = constrained_thresholds(probs, targs, min_recall=.8)
    assert table.thresh.tolist() == th2.tolist()
    np.testing.assert_allclose(table['precision_at_r0p8'], pr.numpy())
    # a label that cannot reach the precision: NaN in the table and left out of the estimates, as in the search
    noisy = probs.clone(); noisy[:, 0] = torch.rand(len(probs), generator=torch.Generator().manual_seed(0))
    from fastai_multilabel.callback.threshold import _label_scores, _objective
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        th3, r3, met3 = constrained_thresholds(noisy, targs, min_precision=.95)
    assert not met3[0]
    got = _label_scores(noisy, targs, th3, constraint=('precision', .95))
    assert torch.equal(got.isnan(), r3.isnan()) and torch.allclose(got[met3], r3[met3])
    assert _objective(noisy, targs, th3, True, 'micro', 1., 'fbeta', None, ('precision', .95)) == pytest.approx(r3.nanmean().item())

def test_resampled_thresholds_reproducible_and_out_of_sample():
    p, t = data(n=400, ties=False)
    a, b = resampled_thresholds(p, t, 5, seed=1), resampled_thresholds(p, t, 5, seed=1)
    th = a['thresh']
    assert torch.equal(a.pop('thresh'), b.pop('thresh')) and a == b
    assert resampled_thresholds(p, t, 5, seed=2)['out_of_sample'] != a['out_of_sample']
    # by hand: split 1 of seed 1
    g = torch.Generator().manual_seed(1); perm = torch.randperm(400, generator=g)
    th0 = best_thresholds(p[perm[:200]], t[perm[:200]])[0]
    ths = [th0]
    for _ in range(4): perm = torch.randperm(400, generator=g); ths.append(best_thresholds(p[perm[:200]], t[perm[:200]])[0])
    assert torch.allclose(th, torch.stack(ths).mean(0))
    assert a['out_of_sample'] < a['in_sample']  # tuned on what it is scored on: optimistic
    # the values, by hand with scikit-learn: each half's thresholds scored (macro F1) on the other half
    from sklearn.metrics import f1_score
    g = torch.Generator().manual_seed(1); outs = []
    for _ in range(5):
        perm = torch.randperm(400, generator=g); A, B = perm[:200], perm[200:]
        tA = best_thresholds(p[A], t[A])[0]
        outs.append(f1_score(t[B], p[B] > tA, average='macro', zero_division=0))
    assert a['out_of_sample'] == pytest.approx(np.mean(outs)) and a['out_of_sample_std'] == pytest.approx(np.std(outs, ddof=1))
    assert a['in_sample'] == pytest.approx(best_thresholds(p, t)[1].mean().item())
    assert a['averaged_in_sample'] == pytest.approx(f1_score(t, p > th, average='macro', zero_division=0))
    # one global threshold: the pooled (micro) score
    gl = resampled_thresholds(p, t, 3, seed=1, per_label=False)
    g = torch.Generator().manual_seed(1); outs = []
    for _ in range(3):
        perm = torch.randperm(400, generator=g); A, B = perm[:200], perm[200:]
        outs.append(f1_score(t[B], p[B] > best_thresholds(p[A], t[A], per_label=False)[0], average='micro'))
    assert gl['out_of_sample'] == pytest.approx(np.mean(outs))

def test_tune_thresholds_n_splits_on_shipped_data():
    "The resampled estimate is below the in-sample score on the shipped debtags data, and the table carries both."
    from fastai.basics import Learner
    from fastai_multilabel.demo import BagOfTokens
    torch.manual_seed(0)
    df, vocab = load_debtags()
    dls = debtags_dls(df, vocab, bs=128)
    learn = Learner(dls, BagOfTokens(2**16, len(vocab)), loss_func=MultiLabelBCELoss())
    learn.fit_one_cycle(1, 1e-2)
    table = learn.tune_thresholds(n_splits=5, seed=0)
    a = table.attrs
    assert a['out_of_sample'] < a['in_sample'] and a['out_of_sample_std'] > 0
    assert torch.allclose(learn.loss_func.thresh, torch.tensor(table.thresh.values, dtype=torch.float32))
    assert table.attrs == pytest.approx(learn.tune_thresholds(n_splits=5, seed=0, apply=False).attrs)
