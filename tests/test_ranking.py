"Ranking metrics against scikit-learn: average precision, ROC AUC, LRAP, coverage error, ranking loss; ties, one-class labels, unknown entries."
import warnings
import numpy as np, pytest, torch
from sklearn import metrics as skm
from fastai_multilabel.ranking import *
from fastai_multilabel.ranking import label_ranking

def data(n=300, L=6, seed=0, ties=False, one_class=True, unknown=0.):
    g = torch.Generator().manual_seed(seed)
    t = (torch.rand(n, L, generator=g) < .3).float()
    p = (torch.rand(n, L, generator=g) * .7 + t * .3).clamp(0, 1)
    if ties: p = (p * 8).round() / 8
    if one_class: t[:, 0] = 0; t[:, 1] = 1  # no positives; no negatives
    if unknown: t[torch.rand(n, L, generator=g) < unknown] = -1
    return p, t

def sk_label(fn, p, t, j):
    "scikit-learn's `fn` on label j's known entries, NaN where undefined."
    k = t[:, j] >= 0
    y, s = t[k, j].numpy(), p[k, j].numpy()
    if y.sum() == 0 or (fn is skm.roc_auc_score and y.sum() == len(y)): return np.nan
    return fn(y, s)

@pytest.mark.parametrize('ties', [False, True])
@pytest.mark.parametrize('unknown', [0., .2])
@pytest.mark.parametrize('kind', ['ap', 'auc'])
def test_label_scores_vs_sklearn(ties, unknown, kind):
    p, t = data(ties=ties, unknown=unknown)
    fn, sk = (multilabel_average_precision, skm.average_precision_score) if kind == 'ap' else (multilabel_roc_auc, skm.roc_auc_score)
    ii = -1 if unknown else None
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        per = fn(p, t, average=None, ignore_index=ii)
    exp = np.array([sk_label(sk, p, t, j) for j in range(t.shape[1])])
    np.testing.assert_allclose(per.numpy(), exp, atol=1e-6)  # NaN where undefined: scikit-learn raises or returns 0
    assert len(w) == 1 and ('label(s)' in str(w[0].message))
    ok = ~np.isnan(exp)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        np.testing.assert_allclose(fn(p, t, ignore_index=ii).item(), exp[ok].mean(), atol=1e-6)
        pos = (t == 1).sum(0).numpy()
        np.testing.assert_allclose(fn(p, t, average='weighted', ignore_index=ii).item(), np.average(exp[ok], weights=pos[ok]), atol=1e-6)
        k = (t >= 0).numpy().ravel()
        np.testing.assert_allclose(fn(p, t, average='micro', ignore_index=ii).item(),
                                   sk(t.numpy().ravel()[k], p.numpy().ravel()[k]), atol=1e-6)

def test_all_defined_equals_sklearn_averages():
    p, t = data(one_class=False, ties=True)
    for avg in ('macro', 'weighted', 'micro'):
        np.testing.assert_allclose(multilabel_average_precision(p, t, avg).item(), skm.average_precision_score(t, p, average=avg), atol=1e-6)
        np.testing.assert_allclose(multilabel_roc_auc(p, t, avg).item(), skm.roc_auc_score(t, p, average=avg), atol=1e-6)

def test_logits():
    p, t = data(one_class=False)
    logits = torch.logit(p.clamp(1e-4, 1 - 1e-4))
    np.testing.assert_allclose(multilabel_average_precision(logits, t, sigmoid=True).item(),
                               skm.average_precision_score(t, logits.sigmoid()), atol=1e-6)

@pytest.mark.parametrize('n_bins', [8, 64, 1024])
def test_binned_within_bound(n_bins):
    p, t = data(n=2000, one_class=False)
    pos, neg = t.bool(), ~t.bool()
    h = label_hist(p, pos, neg, n_bins)
    for avg in (None, 'macro', 'weighted', 'micro'):
        ex, bi, bd = label_ranking(p, pos, neg, avg), label_ranking(p, pos, neg, avg, n_bins), ranking_error_bound(h, avg)
        if avg not in (None, 'micro'): ex, bi = [[average_ranking(x, pos.sum(0), avg) for x in r] for r in (ex, bi)]
        for e, b, d in zip(ex, bi, bd): assert ((e - b).abs() <= d + 1e-12).all()
    # the bound is useful: at 1024 bins under 0.01 here
    if n_bins == 1024: assert ranking_error_bound(h)[0] < .01 and ranking_error_bound(h)[1] < .01

@pytest.mark.parametrize('ties', [False, True])
@pytest.mark.parametrize('unknown', [0., .2])
def test_sample_ranking_vs_sklearn(ties, unknown):
    p, t = data(n=200, L=7, ties=ties, unknown=unknown, one_class=False)
    t[:5] = 0; t[5:8] = 1  # samples without / with only true labels
    ii = -1 if unknown else None
    lrap, cov, loss = sample_ranking(*ranking_inputs(p, t, ignore_index=ii))
    for i in range(len(p)):
        k = (t[i] >= 0).numpy()
        y, s = t[i, k].numpy()[None], p[i, k].numpy()[None]
        if not k.any(): continue
        np.testing.assert_allclose(lrap[i].item(), skm.label_ranking_average_precision_score(y, s), atol=1e-9)
        np.testing.assert_allclose(cov[i].item(), skm.coverage_error(y, s), atol=1e-9)
        np.testing.assert_allclose(loss[i].item(), skm.label_ranking_loss(y, s), atol=1e-9)
    if not unknown:
        np.testing.assert_allclose(label_ranking_average_precision(p, t).item(), skm.label_ranking_average_precision_score(t, p), atol=1e-9)
        np.testing.assert_allclose(coverage_error(p, t).item(), skm.coverage_error(t, p), atol=1e-9)
        np.testing.assert_allclose(label_ranking_loss(p, t).item(), skm.label_ranking_loss(t, p), atol=1e-9)

def test_paper_scores_by_hand():
    p, t = data(n=100, L=5, one_class=False)
    r = paper_scores(p, t, thresh=.5, k=2)
    for sfx, m in (('', p > .5), ('_top2', torch.zeros_like(t, dtype=torch.bool).scatter(1, p.topk(2, 1).indices, True))):
        tp, pp, P = (m & t.bool()).sum(0).double(), m.sum(0).double(), t.sum(0).double()
        cp, cr = (tp / pp).mean().item(), (tp / P).mean().item()
        op, orr = (tp.sum() / pp.sum()).item(), (tp.sum() / P.sum()).item()
        np.testing.assert_allclose([r[f'{n}{sfx}'] for n in ('CP', 'CR', 'CF1', 'OP', 'OR', 'OF1')],
                                   [cp, cr, 2*cp*cr/(cp+cr), op, orr, 2*op*orr/(op+orr)], atol=1e-12)
    assert r['OF1'] == pytest.approx(skm.f1_score(t, (p > .5).float(), average='micro'))
    np.testing.assert_allclose(r['mAP'], skm.average_precision_score(t, p), atol=1e-6)

def test_bad_input():
    p, t = data()
    with pytest.raises(ValueError, match="Expected `average` to be one of"): multilabel_average_precision(p, t, 'samples')
    with pytest.raises(ValueError, match="ignore_index=-1"): multilabel_roc_auc(p, t.masked_fill(t == 0, -1))
    with pytest.raises(ValueError, match="Expected `ignore_index` to be None or an int other than 0 and 1"): multilabel_roc_auc(p, t, ignore_index=1)
    with pytest.raises(ValueError, match="Expected probabilities in \\[0, 1\\]"): multilabel_average_precision(p * 3, t)
    with pytest.raises(ValueError, match="at least one sample"): coverage_error(p[:0], t[:0])
