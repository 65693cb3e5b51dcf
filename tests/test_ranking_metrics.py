"""The fastai ranking metrics, the papers' set and unknown targets (`ignore_index`) through fastai's protocol, against scikit-learn:
uneven batches, logits and probabilities, ties, one-class labels, unknown entries (scikit-learn on the known entries only)."""
import warnings
import numpy as np, pytest, torch
from sklearn import metrics as skm
from fastai_multilabel.all import *
from fastai_multilabel.ranking import label_hist, ranking_weights, ranking_inputs
from fastai_multilabel.core import known_targs
from helpers import feed, feed_all, record, make_learn

def data(n=301, L=6, seed=0, ties=False, unknown=0., one_class=True):
    "Logits, 0/1 targets (-1 unknown with `unknown`); label 0 without positives, label 1 without negatives."
    g = torch.Generator().manual_seed(seed)
    t = (torch.rand(n, L, generator=g) < .3).float()
    x = torch.randn(n, L, generator=g) + 1.5 * t
    if ties: x = (x * 2).round() / 2
    if one_class: t[:, 0] = 0; t[:, 1] = 1
    if unknown: t[torch.rand(n, L, generator=g) < unknown] = -1
    return x, t

def sk_per_label(fn, probs, t):
    res = []
    for j in range(t.shape[1]):
        k = t[:, j] >= 0; y = t[k, j].numpy()
        undefined = y.sum() == 0 or (fn is skm.roc_auc_score and y.sum() == len(y))
        res.append(np.nan if undefined else fn(y, probs[k, j].numpy()))
    return np.array(res)

def quiet(f, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); return f(*a, **k)

@pytest.mark.parametrize('unknown', [0., .2])
@pytest.mark.parametrize('ties', [False, True])
@pytest.mark.parametrize('sigmoid', [True, False])
def test_exact_ap_auc_streaming(unknown, ties, sigmoid):
    x, t = data(ties=ties, unknown=unknown)
    probs = x.sigmoid()
    preds = x if sigmoid else probs
    ii = -1 if unknown else None
    for cls, sk in ((AveragePrecision, skm.average_precision_score), (RocAuc, skm.roc_auc_score)):
        exp = sk_per_label(sk, probs, t); ok = ~np.isnan(exp); pos = (t == 1).sum(0).numpy()
        k = (t >= 0).numpy().ravel()
        micro = sk(t.numpy().ravel()[k], probs.numpy().ravel()[k])
        for avg, e in (('macro', exp[ok].mean()), ('weighted', np.average(exp[ok], weights=pos[ok])), ('micro', micro)):
            v = quiet(feed, cls(avg, n_bins=None, sigmoid=sigmoid, ignore_index=ii), preds, t, bs=64)
            assert v == pytest.approx(e, abs=1e-6), (cls, avg)
        per = cls is AveragePrecision and PerLabelAveragePrecision or PerLabelRocAuc
        ms = list(per(list('abcdef'), n_bins=None, sigmoid=sigmoid, ignore_index=ii))
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            vals = feed_all(ms, preds, t, bs=50)
        np.testing.assert_allclose(vals, exp, atol=1e-6)   # NaN where undefined
        assert len(w) == 1 and "'a'" not in str(w[0].message) and ': a' in str(w[0].message)  # once per epoch, naming the label

@pytest.mark.parametrize('n_bins', [16, 1024])
def test_binned_within_bound(n_bins):
    x, t = data(n=2000, one_class=False)
    probs = x.sigmoid(); pos, neg = ranking_weights(t)
    h = label_hist(probs, pos, neg, n_bins)
    for avg in ('macro', 'weighted', 'micro'):
        ap, auc = feed(AveragePrecision(avg, n_bins), x, t, bs=64), feed(RocAuc(avg, n_bins), x, t, bs=64)
        (bap, bauc) = ranking_error_bound(h, avg)
        assert abs(ap - skm.average_precision_score(t, probs, average=avg)) <= bap + 1e-6
        assert abs(auc - skm.roc_auc_score(t, probs, average=avg)) <= bauc + 1e-6
        # and equal to the one-shot binned value
        assert ap == pytest.approx(multilabel_average_precision(probs, t, avg, n_bins=n_bins).item(), abs=1e-9)

def test_histogram_shared_and_state_bounded():
    x, t = data(n=640, one_class=False)
    ms = [AveragePrecision(), RocAuc(), AveragePrecision('micro')]
    feed_all(ms, x, t, bs=64)
    p = ms[0]._pass
    assert all(m._pass is p for m in ms) and p.stats.hists == [1024]  # one histogram for the three columns
    assert p.stats.hist1024.numel() == 6 * 1025 * 2

@pytest.mark.parametrize('unknown', [0., .2])
def test_sample_ranking_metrics(unknown):
    x, t = data(n=203, L=7, ties=True, unknown=unknown, one_class=False)
    t[:4] = 0; t[4:6] = 1
    ii = -1 if unknown else None
    probs = x.sigmoid()
    vals = feed_all([LabelRankingAveragePrecision(ignore_index=ii), CoverageError(ignore_index=ii), RankingLoss(ignore_index=ii)], x, t, bs=64)
    exp = np.zeros(3)
    for i in range(len(t)):  # scikit-learn per sample, on its known labels
        k = (t[i] >= 0).numpy()
        y, s = t[i, k].numpy()[None], probs[i, k].numpy()[None]
        exp += [skm.label_ranking_average_precision_score(y, s), skm.coverage_error(y, s), skm.label_ranking_loss(y, s)] if k.any() else [1, 0, 0]
    np.testing.assert_allclose(vals, exp / len(t), atol=1e-9)

def test_names_and_directions():
    assert [AveragePrecision().name, AveragePrecision('micro', 256).name, AveragePrecision(n_bins=None).name] == ['map_macro', 'map_micro_b256', 'map_macro_exact']
    assert [m.name for m in PerLabelRocAuc(['cat', 'a.b'])] == ['roc_auc_cat', 'roc_auc_a_b']
    assert [m.name for m in paper_metrics()] == ['map_macro', 'cp_t0p5', 'cr_t0p5', 'cf1_t0p5', 'op_t0p5', 'or_t0p5', 'of1_t0p5',
                                                'cp_top3', 'cr_top3', 'cf1_top3', 'op_top3', 'or_top3', 'of1_top3']
    assert check_metric_names([*paper_metrics(['x', 'y']), RocAuc(), LabelRankingAveragePrecision(), CoverageError(), RankingLoss()])
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # lower-is-better names are declared, no warning about them
        CoverageError(); RankingLoss()

@pytest.mark.parametrize('unknown', [0., .15])
def test_paper_metrics(unknown):
    x, t = data(n=300, L=8, unknown=unknown, one_class=False)
    ii = -1 if unknown else None
    ms = paper_metrics(thresh=.4, k=2, n_bins=None, ignore_index=ii)
    vals = dict(zip([m.name for m in ms], feed_all(ms, x, t, bs=64)))
    ref = paper_scores(x, t, thresh=.4, k=2, sigmoid=True, ignore_index=ii)
    assert [vals[m.name] for m in ms] == pytest.approx(list(ref.values()), abs=1e-9)
    # by hand on the known entries: CF1 is the harmonic mean of CP and CR
    known, probs = t >= 0, x.sigmoid()
    m = (probs > .4) & known; tp = (m & (t == 1)).sum(0).double(); pp = m.sum(0).double(); P = (t == 1).sum(0).double()
    cp, cr = (tp / pp).mean().item(), (tp / P).mean().item()
    assert vals['cp_t0p4'] == pytest.approx(cp) and vals['cr_t0p4'] == pytest.approx(cr) and vals['cf1_t0p4'] == pytest.approx(2*cp*cr/(cp+cr))
    assert vals['of1_t0p4'] == pytest.approx(skm.f1_score(t[known].numpy(), m[known].numpy()))

def known_sk(fn, probs, t, thresh=.5, **kw):
    "scikit-learn's per-label `fn` of the decisions at `thresh`, each label on its known entries."
    return np.array([fn(t[t[:, j] >= 0, j].numpy(), (probs[t[:, j] >= 0, j] > thresh).numpy(), **kw) for j in range(t.shape[1])])

def test_ignore_index_thresholded_metrics():
    x, t = data(n=257, unknown=.2, one_class=False)
    probs, known = x.sigmoid(), (t >= 0)
    pm = (probs > .5) & known
    f1 = known_sk(skm.f1_score, probs, t, zero_division=0)
    tp = (pm & (t == 1)).sum().item(); fp = (pm & (t == 0)).sum().item(); fn = ((~pm) & (t == 1)).sum().item()
    acc = ((pm == (t == 1)) & known).sum().item() / known.sum().item()
    # per sample over its known labels, top-2 among them
    samp_f1 = np.mean([skm.f1_score(t[i][known[i]].numpy(), pm[i][known[i]].numpy(), zero_division=0) for i in range(len(t))])
    top = x.masked_fill(~known, -np.inf).topk(2, 1).indices
    top2 = np.mean([(t[i, top[i]] == 1).sum().item() / 2 for i in range(len(t))])
    ms = [FScore(ignore_index=-1), FScore(average='micro', ignore_index=-1), FScore(average='samples', ignore_index=-1),
          ThresholdAccuracy(ignore_index=-1), HammingLoss(ignore_index=-1), PrecisionAtK(2, ignore_index=-1),
          *PerLabelFScore(list('abcdef'), ignore_index=-1)]
    vals = feed_all(ms, x, t, bs=64)
    np.testing.assert_allclose(vals, [f1.mean(), 2*tp/(2*tp+fp+fn), samp_f1, acc, 1-acc, top2, *f1], atol=1e-9)
    # a label whose every entry is unknown: undefined, not an error
    t2 = t.clone(); t2[:, 2] = -1
    assert np.isnan(feed(PerLabelFScore(list('abcdef'), ignore_index=-1, zero_division=float('nan'))[2], x, t2))
    with pytest.raises(ValueError, match='ignore_index=-1'): feed(FScore(), x, t)

def test_ignore_index_best_thresholds():
    x, t = data(n=150, L=4, unknown=.25, one_class=False, ties=True)
    probs = x.sigmoid()
    th, sc = best_thresholds(probs, t, ignore_index=-1)
    for j in range(4):  # each label alone on its known entries
        k = t[:, j] >= 0
        tj, sj = best_thresholds(probs[k, j:j+1], t[k, j:j+1])
        assert th[j] == tj[0] and sc[j] == pytest.approx(sj[0].item())
    k = (t >= 0).reshape(-1)
    g, gs = best_thresholds(probs, t, per_label=False, ignore_index=-1)
    g1, gs1 = best_thresholds(probs.reshape(-1, 1)[k], t.reshape(-1, 1)[k], per_label=False)
    assert g == g1 and gs.item() == pytest.approx(gs1.item())
    a, asc = best_thresholds(probs, t, metric='accuracy', ignore_index=-1)
    for j in range(4):
        k = t[:, j] >= 0
        assert asc[j].item() == pytest.approx(best_thresholds(probs[k, j:j+1], t[k, j:j+1], metric='accuracy')[1][0].item())

@pytest.mark.parametrize('n_bins', [None, 256])
def test_ignore_index_threshold_search_and_report(n_bins):
    g = torch.Generator().manual_seed(3)
    unknown = torch.rand(700, 5, generator=g) < .2
    learn = make_learn([FScore(ignore_index=-1)], cbs=ThresholdSearch(per_label=True, n_bins=n_bins, ignore_index=-1))
    for ds in (learn.dls.train.dataset, learn.dls.valid.dataset):  # mark entries unknown in the data itself
        for i, (xx, yy) in enumerate(ds): yy[unknown[i]] = -1
    learn.fit(1, .1)
    probs, targs = learn.get_preds()
    assert (targs == -1).any()
    pos, neg = ranking_weights(*known_targs(targs, -1))
    exp = best_thresholds(probs, targs, ignore_index=-1)[0] if n_bins is None else best_thresholds_binned(label_hist(probs, pos, neg, n_bins))[0]
    assert torch.equal(learn.loss_func.thresh, exp.float())
    rep = label_report(learn, ignore_index=-1)
    k = targs[:, 0] >= 0
    assert rep.loc['label0', 'support'] == (targs[:, 0] == 1).sum().item()
    assert rep.loc['label0', 'average_precision'] == pytest.approx(skm.average_precision_score(targs[k, 0], probs[k, 0]), abs=1e-6)
    assert rep.loc['label0', 'f1'] == pytest.approx(skm.f1_score(targs[k, 0], probs[k, 0] > learn.loss_func.thresh[0]), abs=1e-9)
    table = learn.tune_thresholds(apply=False, ignore_index=-1)
    assert table.thresh.tolist() == best_thresholds(probs, targs, ignore_index=-1)[0].tolist()

def test_learner_fit_ranking_columns_warn_once_per_epoch():
    # label 4 never positive in the validation set: AP undefined there
    learn = make_learn([AveragePrecision(), *PerLabelAveragePrecision(list('abcde')), RocAuc(), CoverageError()])
    for i, (xx, yy) in enumerate(learn.dls.valid.dataset): yy[4] = 0
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        learn.fit(2, .1)
    undefined = [x for x in w if 'undefined' in str(x.message)]
    assert len([x for x in undefined if 'Average precision' in str(x.message)]) == 2  # once per epoch, not per column
    rec = record(learn)
    probs, targs = learn.get_preds()
    assert np.isnan(rec['ap_e'])
    assert rec['map_macro'] == pytest.approx(np.nanmean([rec[f'ap_{c}'] for c in 'abcd']), abs=1e-12)
    pos, neg = ranking_weights(targs[:, :4])
    bound = ranking_error_bound(label_hist(probs[:, :4], pos, neg, 1024))[0].item()
    assert abs(rec['map_macro'] - skm.average_precision_score(targs[:, :4], probs[:, :4])) <= bound + 1e-6
    assert rec['coverage_error'] == pytest.approx(skm.coverage_error(targs, probs), abs=1e-6)

def test_bad_input():
    with pytest.raises(ValueError, match='Expected `average` to be one of'): AveragePrecision('samples')
    with pytest.raises(ValueError, match='Expected `n_bins` to be an int >= 1'): RocAuc(n_bins=0)
    with pytest.raises(ValueError, match='Expected `ignore_index` to be None or an int other than 0 and 1'): FScore(ignore_index=0)
    with pytest.raises(TypeError, match='unpacked'): PerLabelAveragePrecision(['a'])(torch.zeros(2, 1), torch.zeros(2, 1))
    x, t = data(L=6)
    with pytest.raises(ValueError, match='Expected `labels` to name every output'): feed_all(list(PerLabelRocAuc(list('abc'))), x, t)

@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
def test_non_finite_scores_reported_by_the_histogram_metrics(bad):
    "A NaN or infinite score passes the histogram's update (its codes stay in range) and is reported at the epoch's value."
    x, t = data(L=6)
    x = x.clone(); x[5, 1] = bad
    for m in (AveragePrecision(), RocAuc(n_bins=200)):
        with pytest.raises(ValueError, match='Expected finite `preds`'): feed(m, x, t)
