"The Keras metrics of `fastai_multilabel.keras` against scikit-learn, NumPy, the fastai metrics and the torch histogram: values, names, messages, state."
import os; os.environ.setdefault('KERAS_BACKEND', 'torch')
import math, subprocess, sys
from types import SimpleNamespace
import numpy as np, pytest, torch
import keras
from keras import ops
from sklearn.metrics import accuracy_score, fbeta_score, precision_score, recall_score
import fastai_multilabel.keras as K
import fastai_multilabel.metrics as F
from fastai_multilabel.losses import MultiLabelBCELoss
from fastai_multilabel.streaming import ThresholdHistogram
from helpers import feed, feed_all, rand_data

pytestmark = pytest.mark.filterwarnings('ignore::sklearn.exceptions.UndefinedMetricWarning')
approx = pytest.approx
NAN = float('nan')

# %% data: 300 samples (batches of 64: the last one uneven), 6 labels; label 4 is never predicted, label 5 has no positives
N, L = 300, 6
def make_data(seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((N, L)) * 2).astype('float32')
    logits[:, 4] = -np.abs(logits[:, 4]) - 3                  # probabilities below 0.05: never predicted
    y = (rng.random((N, L)) < 0.3).astype('float32')
    y[:, 5] = 0
    probs = torch.sigmoid(torch.from_numpy(logits)).numpy()    # float32, as the metrics see them
    w = (rng.random(N) * 2).astype('float32'); w[::7] = 0      # sample weights, some 0
    return logits, probs, y, w

LOGITS, PROBS, Y, W = make_data()
TIES = np.round(PROBS * 4) / 4                                 # scores on a grid of 0.25: many ties, for top-k
VEC = [0.3, 0.5, 0.7, 0.2, 0.4, 0.6]                           # per-label thresholds
THRESHES = [0.5, VEC]
TIDS = ['t0p5', 'tvec']
AVERAGES = ['micro', 'macro', 'weighted', 'samples']
CRITERIA = ['hamming', 'exact_match', 'overlap', 'contain', 'belong']
LABELS = ['c.d', 'a b', '1', 'macro', 'c_d', 'x']

def mask(probs, thresh): return probs > np.asarray(thresh, 'float32')  # the `prob > thresh` rule, in float32 as the metrics

def as_floats(r):
    "A metric result (a scalar tensor or a dict of them) as floats."
    return {k: float(ops.convert_to_numpy(v)) for k,v in r.items()} if isinstance(r, dict) else float(ops.convert_to_numpy(r))

def values(r): return list(r.values()) if isinstance(r, dict) else [r]

def kfeed(metric, y, p, w=None, bs=64):
    "Run a Keras `metric` as `fit` does (reset_state, update_state per batch, result) and return its result as floats."
    metric.reset_state()
    for i in range(0, len(p), bs): metric.update_state(y[i:i+bs], p[i:i+bs], None if w is None else w[i:i+bs])
    return as_floats(metric.result())

# %% 1. against scikit-learn
@pytest.mark.parametrize('zero_division', [0., 1.])
@pytest.mark.parametrize('beta', [1., 2.])
@pytest.mark.parametrize('average', AVERAGES)
@pytest.mark.parametrize('thresh', THRESHES, ids=TIDS)
def test_fscore_vs_sklearn(thresh, average, beta, zero_division):
    got = kfeed(K.FScore(beta, thresh, average, zero_division=zero_division), Y, PROBS)
    exp = fbeta_score(Y, mask(PROBS, thresh), beta=beta, average=average, zero_division=zero_division)
    assert got == approx(exp, abs=1e-5)

@pytest.mark.parametrize('zero_division', [0., 1.])
@pytest.mark.parametrize('average', AVERAGES)
@pytest.mark.parametrize('thresh', THRESHES, ids=TIDS)
def test_jaccard_and_hamming_loss_vs_sklearn(thresh, average, zero_division):
    from sklearn.metrics import jaccard_score, hamming_loss
    got = kfeed(K.Jaccard(thresh, average, zero_division=zero_division), Y, PROBS, W)
    exp = jaccard_score(Y, mask(PROBS, thresh), average=average, zero_division=zero_division, sample_weight=W)
    assert got == approx(exp, abs=1e-5)
    assert kfeed(K.HammingLoss(thresh), Y, PROBS, W) == approx(hamming_loss(Y, mask(PROBS, thresh), sample_weight=W), abs=1e-5)

@pytest.mark.parametrize('average', AVERAGES)
@pytest.mark.parametrize('from_logits,weighted', [(True, False), (False, True), (True, True)])
def test_fscore_logits_and_sample_weight_vs_sklearn(average, from_logits, weighted):
    w = W if weighted else None
    got = kfeed(K.FScore(2., VEC, average, from_logits=from_logits, zero_division=1.), Y, LOGITS if from_logits else PROBS, w)
    assert got == approx(fbeta_score(Y, mask(PROBS, VEC), beta=2., average=average, zero_division=1., sample_weight=w), abs=1e-5)

@pytest.mark.parametrize('weighted', [False, True])
@pytest.mark.parametrize('from_logits', [False, True])
@pytest.mark.parametrize('thresh', [0.5, 0.2, VEC], ids=['t0p5', 't0p2', 'tvec'])
def test_accuracies_vs_sklearn(thresh, from_logits, weighted):
    p,w,pm = LOGITS if from_logits else PROBS,W if weighted else None,mask(PROBS, thresh)
    elementwise = accuracy_score(Y.ravel(), pm.ravel(), sample_weight=None if w is None else np.repeat(w, L))
    assert kfeed(K.ThresholdAccuracy(thresh, from_logits), Y, p, w) == approx(elementwise, abs=1e-5)
    assert kfeed(K.SubsetAccuracy(thresh, from_logits), Y, p, w) == approx(accuracy_score(Y, pm, sample_weight=w), abs=1e-5)

@pytest.mark.parametrize('thresh', [0.25, 0.5, 0.75, [0.25, 0.5, 0.75, 0.5, 0.25, 1.]], ids=['t0p25', 't0p5', 't0p75', 'tvec'])
def test_scores_equal_to_thresh_are_not_predicted(thresh):
    "Scores on the grid of 0.25: `prob > thresh` (fastai's rule), never `>=`."
    pm = mask(TIES, thresh)
    assert kfeed(K.ThresholdAccuracy(thresh), Y, TIES) == approx(accuracy_score(Y.ravel(), pm.ravel()), abs=1e-5)
    assert kfeed(K.FScore(thresh=thresh, average='micro'), Y, TIES) == approx(fbeta_score(Y, pm, beta=1., average='micro'), abs=1e-5)

PER_LABEL = {'recall': (K.PerLabelRecall, {}, recall_score), 'precision': (K.PerLabelPrecision, {}, precision_score),
             'f1': (K.PerLabelFScore, {}, fbeta_score), 'f2': (K.PerLabelFScore, {'beta': 2.}, fbeta_score)}

@pytest.mark.parametrize('from_logits,weighted', [(False, False), (True, True)])
@pytest.mark.parametrize('zero_division', [0., 1.])
@pytest.mark.parametrize('thresh', THRESHES, ids=TIDS)
@pytest.mark.parametrize('kind', PER_LABEL)
def test_per_label_vs_sklearn(kind, thresh, zero_division, from_logits, weighted):
    cls,kw,sk = PER_LABEL[kind]
    w,labels = W if weighted else None,[f'l{i}' for i in range(L)]
    got = kfeed(cls(labels, thresh=thresh, from_logits=from_logits, zero_division=zero_division, **kw), Y, LOGITS if from_logits else PROBS, w)
    exp = sk(Y, mask(PROBS, thresh), average=None, zero_division=zero_division, sample_weight=w, **({'beta': kw.get('beta', 1.)} if sk is fbeta_score else {}))
    assert list(got.values()) == approx(exp.tolist(), abs=1e-5)
    if thresh == 0.5: assert list(got) == [f"{kind}_{l}_t0p5{'_zd1' if zero_division else ''}" for l in labels]

# %% 1b. top-k against NumPy
def np_topk(p, k):
    "Mask of the `k` highest scores of each row, the lowest index first among ties (a stable sort of -p)."
    m = np.zeros(p.shape, bool)
    np.put_along_axis(m, np.argsort(-p, axis=1, kind='stable')[:, :k], True, axis=1)
    return m

def np_set_scores(m, t, criteria):
    t = t.astype(bool)
    return {'hamming': (m == t).mean(1), 'exact_match': (m == t).all(1), 'overlap': (m & t).any(1),
            'contain': (m | ~t).all(1), 'belong': (t | ~m).all(1)}[criteria].astype(float)

def test_topk_mask_ties_by_hand():
    p = np.array([[.5, .5, .5, .1], [.2, .9, .2, .2], [.1, .2, .3, .4], [0., 0., 0., 0.]], 'float32')
    exp = [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 0, 0]]
    assert ops.convert_to_numpy(K.topk_mask(p, 2)).astype(int).tolist() == exp
    for k in range(1, L+1): assert np.array_equal(ops.convert_to_numpy(K.topk_mask(TIES, k)), np_topk(TIES, k))

@pytest.mark.parametrize('criteria', CRITERIA)
@pytest.mark.parametrize('k', [1, 2, 3])
def test_topk_accuracy_vs_numpy(k, criteria):
    m = K.TopKAccuracy(k, criteria)
    assert m.name == f'top{k}_accuracy' + ('' if criteria == 'hamming' else f'_{criteria}')
    s = np_set_scores(np_topk(TIES, k), Y, criteria)
    assert kfeed(m, Y, TIES) == approx(s.mean(), abs=1e-5)
    assert kfeed(m, Y, TIES, W) == approx(np.average(s, weights=W), abs=1e-5)

@pytest.mark.parametrize('k', [1, 2, 3])
def test_precision_recall_at_k_vs_numpy(k):
    hits,pos = (np_topk(TIES, k) & (Y == 1)).sum(1),Y.sum(1)
    assert (pos == 0).any()                                    # samples without positives: recall's zero_division counts
    assert kfeed(K.PrecisionAtK(k), Y, TIES) == approx((hits / k).mean(), abs=1e-5)
    assert kfeed(K.PrecisionAtK(k), Y, TIES, W) == approx(np.average(hits / k, weights=W), abs=1e-5)
    for zd in (0., 1.):
        r = np.where(pos > 0, hits / np.maximum(pos, 1), zd)
        assert kfeed(K.RecallAtK(k, zd), Y, TIES) == approx(r.mean(), abs=1e-5)
        assert kfeed(K.RecallAtK(k, zd), Y, TIES, W) == approx(np.average(r, weights=W), abs=1e-5)

# %% 2. the fastai metric and the Keras metric of the same class and arguments: same names, same values
# each case: (fastai metric or list of them, Keras metric, data): 'logits' feeds fastai logits and Keras
# (from_logits=True) logits; 'probs' feeds probabilities to both (fastai sigmoid=False); 'ties' feeds tied scores to both
CROSS = {
    'accuracy_t0p3':     lambda: (F.ThresholdAccuracy(0.3), K.ThresholdAccuracy(0.3, from_logits=True), 'logits'),
    'subset_tvec':       lambda: (F.SubsetAccuracy(VEC), K.SubsetAccuracy(VEC, from_logits=True), 'logits'),
    'f2_samples_zd1':    lambda: (F.FScore(2., 0.4, 'samples', zero_division=1.), K.FScore(2., 0.4, 'samples', True, zero_division=1.), 'logits'),
    'f1_samples_zdnan':  lambda: (F.FScore(average='samples', zero_division=NAN), K.FScore(average='samples', from_logits=True, zero_division=NAN), 'logits'),
    'f1_weighted_tvec':  lambda: (F.FScore(1., VEC, 'weighted'), K.FScore(1., VEC, 'weighted', True), 'logits'),
    'f0p5_micro':        lambda: (F.FScore(0.5, 0.5, 'micro'), K.FScore(0.5, 0.5, 'micro', True), 'logits'),
    'f1_macro_zdnan':    lambda: (F.FScore(zero_division=NAN), K.FScore(from_logits=True, zero_division=NAN), 'logits'),
    'f1_weighted_probs': lambda: (F.FScore(average='weighted', sigmoid=False), K.FScore(average='weighted'), 'probs'),
    'top2_overlap':      lambda: (F.TopKAccuracy(2, 'overlap'), K.TopKAccuracy(2, 'overlap'), 'ties'),
    'top3':              lambda: (F.TopKAccuracy(3), K.TopKAccuracy(3), 'ties'),
    'top1_exact':        lambda: (F.TopKAccuracy(1, 'exact_match'), K.TopKAccuracy(1, 'exact_match'), 'ties'),
    'precision_at2':     lambda: (F.PrecisionAtK(2), K.PrecisionAtK(2), 'ties'),
    'recall_at3_zd1':    lambda: (F.RecallAtK(3, zero_division=1.), K.RecallAtK(3, zero_division=1.), 'ties'),
    'recall_at1':        lambda: (F.RecallAtK(1), K.RecallAtK(1), 'logits'),
    'per_label_recall':  lambda: (F.PerLabelRecall(LABELS, thresh=0.4), K.PerLabelRecall(LABELS, thresh=0.4, from_logits=True), 'logits'),
    'per_label_precision_tvec_zd1': lambda: (F.PerLabelPrecision(LABELS, thresh=VEC, zero_division=1.),
                                             K.PerLabelPrecision(LABELS, thresh=VEC, from_logits=True, zero_division=1.), 'logits'),
    'per_label_f2_probs': lambda: (F.PerLabelFScore(LABELS, beta=2., sigmoid=False), K.PerLabelFScore(LABELS, beta=2.), 'probs'),
    'default_labels':    lambda: (F.default_metrics(LABELS), K.default_metrics(LABELS, from_logits=True)[0], 'logits'),
    'default_tvec':      lambda: (F.default_metrics(None, VEC), K.default_metrics(None, VEC, from_logits=True)[0], 'logits'),
    'default_t0p3_labels': lambda: (F.default_metrics(LABELS, 0.3), K.DefaultMetrics(LABELS, 0.3, from_logits=True), 'logits'),
    'default_top2_labels': lambda: (F.default_metrics(LABELS, k=2), K.default_metrics(LABELS, from_logits=True, k=2)[0], 'logits'),
    'default_top3_ties':   lambda: (F.default_metrics(None, 0.5, False, k=3), K.DefaultMetrics(k=3), 'ties'),
    'jaccard_samples_zd1': lambda: (F.Jaccard(0.4, 'samples', zero_division=1.), K.Jaccard(0.4, 'samples', True, zero_division=1.), 'logits'),
    'jaccard_weighted_tvec': lambda: (F.Jaccard(VEC, 'weighted'), K.Jaccard(VEC, 'weighted', True), 'logits'),
    'hamming_loss_t0p3': lambda: (F.HammingLoss(0.3), K.HammingLoss(0.3, from_logits=True), 'logits'),
}
DATA = {'logits': (LOGITS, LOGITS), 'probs': (PROBS, PROBS), 'ties': (TIES, TIES)}

@pytest.mark.parametrize('case', CROSS)
def test_same_names_and_values_as_fastai(case):
    fa,km,data = CROSS[case]()
    fp,kp = DATA[data]
    fa = list(fa) if isinstance(fa, list) else [fa]
    exp = dict(zip([m.name for m in fa], feed_all(fa, torch.from_numpy(fp), torch.from_numpy(Y), bs=64)))
    got = kfeed(km, Y, kp)
    got = got if isinstance(got, dict) else {km.name: got}
    assert list(got) == list(exp)
    assert got == approx(exp, abs=1e-6, nan_ok=True)
    if len(fa) == 1: assert km.name == fa[0].name

# %% 3. bad shapes and arguments: the fastai messages
P8, T8 = rand_data(n=8, n_labels=5)
p8,t8 = P8.numpy(),T8.numpy()

def _fa_labels_change():
    m = F.FScore(); m.reset()
    m.accumulate(SimpleNamespace(pred=P8, yb=(T8,))); m.accumulate(SimpleNamespace(pred=P8[:, :4], yb=(T8[:, :4],)))

def _k_labels_change():
    m = K.FScore(); m.update_state(t8, p8); m.update_state(t8[:, :4], p8[:, :4])

BAD = {  # (fastai raises, Keras raises, exception, match)
    'shape': (lambda: feed(F.FScore(), P8, T8[:, :4]), lambda: K.FScore().update_state(t8[:, :4], p8), ValueError,
              r"Expected `targs` to have the shape of `preds` \(8, 5\), but got \(8, 4\)"),
    'targs_1d': (lambda: feed(F.TopKAccuracy(2), P8, T8[:, 0]), lambda: K.TopKAccuracy(2).update_state(t8[:, 0], p8), ValueError,
                 r"multi-hot `targs` of shape \(N, n_labels\) like `preds` \(8, 5\), but got shape \(8,\)"),
    'preds_3d': (lambda: feed(F.ThresholdAccuracy(), P8[None], T8[None]), lambda: K.ThresholdAccuracy().update_state(t8[None], p8[None]),
                 ValueError, r"Expected `preds` of shape \(N, n_labels\), but got shape \(1, 8, 5\)"),
    'labels_change': (_fa_labels_change, _k_labels_change, ValueError, r"every batch of `preds` to have the 5 labels of the first, but got shape \(8, 4\)"),
    'k_gt_labels': (lambda: feed(F.TopKAccuracy(6), P8, T8), lambda: K.TopKAccuracy(6).update_state(t8, p8), ValueError,
                    r"Expected `k` <= the number of labels \(5\), but got 6"),
    'k_at_gt_labels': (lambda: feed(F.RecallAtK(6), P8, T8), lambda: K.RecallAtK(6).update_state(t8, p8), ValueError,
                       r"Expected `k` <= the number of labels \(5\), but got 6"),
    'k0': (lambda: F.TopKAccuracy(0), lambda: K.TopKAccuracy(0), ValueError, "Expected `k` >= 1, but got 0"),
    'k_float': (lambda: F.PrecisionAtK(2.), lambda: K.PrecisionAtK(2.), TypeError, "Expected `k` to be an int, but got 2.0"),
    'thresh_len': (lambda: feed(F.FScore(thresh=[.2, .3, .4]), P8, T8), lambda: K.FScore(thresh=[.2, .3, .4]).update_state(t8, p8), ValueError,
                   r"Expected `thresh` to have one value per label \(5\), but got 3 values"),
    'thresh_len_labels': (lambda: F.PerLabelRecall(['a', 'b', 'c'], thresh=[.2, .3]), lambda: K.PerLabelRecall(['a', 'b', 'c'], thresh=[.2, .3]),
                          ValueError, r"Expected `thresh` to have one value per label \(3\), but got 2 values"),
    'thresh_1p5': (lambda: F.FScore(thresh=1.5), lambda: K.FScore(thresh=1.5), ValueError, r"Expected `thresh` in \[0, 1\], but got 1.5"),
    'thresh_vec_1p5': (lambda: F.ThresholdAccuracy([.5, 1.5]), lambda: K.ThresholdAccuracy([.5, 1.5]), ValueError,
                       r"Expected every value of `thresh` in \[0, 1\], but got \[0.5, 1.5\]"),
    'thresh_best': (lambda: F.SubsetAccuracy('best'), lambda: K.SubsetAccuracy('best'), ValueError,
                    "Expected `thresh` to be a float, a per-label tensor or 'tuned', but got 'best'"),
    'thresh_none': (lambda: F.FScore(thresh=None), lambda: K.FScore(thresh=None), TypeError, "Expected `thresh` to be a float"),
    'average_sample': (lambda: F.FScore(average='sample'), lambda: K.FScore(average='sample'), ValueError,
                       r"Expected `average` to be one of \('micro', 'macro', 'weighted', 'samples'\), but got 'sample'"),
    'criteria_bogus': (lambda: F.TopKAccuracy(2, 'bogus'), lambda: K.TopKAccuracy(2, 'bogus'), ValueError,
                       r"Expected `criteria` to be one of \('hamming', .*\), but got 'bogus'"),
    'labels_len': (lambda: feed(F.PerLabelRecall(['a', 'b', 'c'])[0], P8, T8), lambda: K.PerLabelRecall(['a', 'b', 'c']).update_state(t8, p8),
                   ValueError, r"Expected `labels` to name every output \(5\), but got 3 labels"),
    'labels_len_default': (lambda: feed_all(F.default_metrics(['a', 'b']), P8, T8), lambda: K.DefaultMetrics(['a', 'b']).update_state(t8, p8),
                           ValueError, r"Expected `labels` to name every output \(5\), but got 2 labels"),
    'labels_str': (lambda: F.PerLabelFScore('abc'), lambda: K.PerLabelFScore('abc'), TypeError,
                   r"Expected `labels` to be a sequence of label names \(such as `dls.vocab`\), but got 'abc'"),
    'beta0': (lambda: F.FScore(beta=0), lambda: K.FScore(beta=0), ValueError, "Expected `beta` > 0, but got 0"),
    'beta0_per_label': (lambda: F.PerLabelFScore(['a'], beta=0), lambda: K.PerLabelFScore(['a'], beta=0), ValueError, "Expected `beta` > 0, but got 0"),
    'zero_division': (lambda: F.FScore(zero_division=0.5), lambda: K.FScore(zero_division=0.5), ValueError,
                      "Expected `zero_division` to be 0, 1 or nan, but got 0.5"),
    'zero_division_at_k': (lambda: F.RecallAtK(2, zero_division=0.5), lambda: K.RecallAtK(2, zero_division=0.5), ValueError,
                           "Expected `zero_division` to be 0, 1 or nan, but got 0.5"),
    'n_bins': (lambda: ThresholdHistogram(0), lambda: K.ScoreHistogram(0), ValueError, "Expected `n_bins` to be an int >= 1, but got 0"),
    'decision_thresh_len': (lambda: MultiLabelBCELoss(thresh=[.2, .3]).decodes(P8.sigmoid()), lambda: K.MultilabelDecision([.2, .3])(P8.sigmoid().numpy()),
                            ValueError, r"Expected `thresh` to have one value per label \(5\), but got 2 values"),
    'decision_k0': (lambda: MultiLabelBCELoss(k=0), lambda: K.MultilabelDecision(k=0), ValueError, "Expected `k` >= 1, but got 0"),
}

@pytest.mark.parametrize('case', BAD)
def test_bad_input_same_message_as_fastai(case):
    fa,ka,exc,match = BAD[case]
    with pytest.raises(exc, match=match) as ef: fa()
    with pytest.raises(exc, match=match) as ek: ka()
    if case.startswith('decision_thresh'): assert str(ef.value) in str(ek.value)  # Keras wraps what a layer's `call` raises
    else: assert str(ek.value) == str(ef.value)

def _bad(kind):
    y,p,l = Y.copy(),PROBS.copy(),LOGITS.copy()
    if kind == 'targ2': y[200, 2] = 2             # the 4th batch of 64: earlier and later batches are good
    elif kind == 'targ_half': y[3, 1] = 0.5
    elif kind == 'targ_mixed': y[3, 1] = 0.5; y[5, 2] = 2; y[7, 0] = -1  # t(t-1) of -0.25, 2 and 2: their sum would not cancel, but a check by sum could
    elif kind == 'targ_nan': y[299, 0] = NAN
    elif kind == 'targ_inf': y[100, 3] = np.inf   # inf*inf == inf: a check by t*t != t misses it
    elif kind == 'pred_nan': p[200, 2] = l[200, 2] = NAN
    elif kind == 'pred_inf': p[10, 0] = np.inf; l[10, 0] = -np.inf
    elif kind == 'pred_ninf': p[10, 0] = -np.inf; l[10, 0] = np.inf
    elif kind == 'pred_neg': p[10, 0] = -0.01; l[10, 0] = -1e30  # a probability below 0 (a logit that low is a finite, good logit)
    elif kind == 'pred_above1': p[10, 0] = 1.01; l[10, 0] = 1e30  # a probability above 1 (a finite, good logit)
    return y,p,l

NAN_METRICS = {'f1_macro': lambda: K.FScore(), 'f1_samples': lambda: K.FScore(average='samples'), 'f1_micro_logits': lambda: K.FScore(average='micro', from_logits=True),
               'accuracy': lambda: K.ThresholdAccuracy(), 'subset': lambda: K.SubsetAccuracy(VEC), 'top2': lambda: K.TopKAccuracy(2),
               'precision_at2': lambda: K.PrecisionAtK(2), 'recall_at2': lambda: K.RecallAtK(2), 'per_label': lambda: K.PerLabelRecall(LABELS),
               'default': lambda: K.DefaultMetrics(LABELS), 'f1_micro_unknown': lambda: K.FScore(average='micro', ignore_index=-1),
               'top2_unknown': lambda: K.TopKAccuracy(2, ignore_index=-1), 'map_macro': lambda: K.AveragePrecision(),
               'roc_auc_micro_logits': lambda: K.RocAuc('micro', from_logits=True),
               'lrap': lambda: K.LabelRankingAveragePrecision(), 'ranking_loss_logits': lambda: K.RankingLoss(from_logits=True),
               'paper_unknown': lambda: K.PaperMetrics(ignore_index=-1)}  # no per-label column: label 5's AP is NaN

@pytest.mark.parametrize('bad', ['targ2', 'targ_half', 'targ_mixed', 'targ_nan', 'targ_inf', 'pred_nan', 'pred_inf', 'pred_ninf', 'pred_neg', 'pred_above1'])
@pytest.mark.parametrize('name', NAN_METRICS)
def test_bad_values_give_nan_until_reset(name, bad):
    m = NAN_METRICS[name]()
    y,p,l = _bad(bad)
    if bad in ('pred_neg', 'pred_above1') and (getattr(m, 'from_logits', False) or m._k is not None):
        # scores, not probabilities: -0.01 and 1.01 are good scores for top-k, -1e30 and 1e30 good logits
        r = kfeed(m, y, l if getattr(m, 'from_logits', False) else p)
        assert not any(np.isnan(v) for v in values(r))
        return
    r = kfeed(m, y, l if getattr(m, 'from_logits', False) else p)
    assert all(np.isnan(v) for v in values(r))
    good = LOGITS if getattr(m, 'from_logits', False) else PROBS
    r = kfeed(m, Y, good)                                                 # kfeed's reset_state clears the bad count
    assert not any(np.isnan(v) for v in values(r))
    assert r == approx(kfeed(NAN_METRICS[name](), Y, good))

def test_no_batch_is_nan():
    assert math.isnan(as_floats(K.FScore().result()))

# %% 4. thresh='tuned'
TUNED = {'f1_macro': lambda t, fl: K.FScore(thresh=t, from_logits=fl), 'f2_samples': lambda t, fl: K.FScore(2., t, 'samples', fl),
         'accuracy': lambda t, fl: K.ThresholdAccuracy(t, fl), 'subset': lambda t, fl: K.SubsetAccuracy(t, fl),
         'per_label_f1': lambda t, fl: K.PerLabelFScore(LABELS, thresh=t, from_logits=fl),
         'default': lambda t, fl: K.DefaultMetrics(LABELS, t, fl)}

@pytest.mark.parametrize('from_logits', [False, True])
@pytest.mark.parametrize('name', TUNED)
def test_tuned_thresholds(name, from_logits):
    make,p = TUNED[name],LOGITS if from_logits else PROBS
    m = make('tuned', from_logits)
    assert 'tuned' in m.name
    run = lambda metric: values(kfeed(metric, Y, p))  # the names differ (tuned, t0p5, tvec-...): compare the values
    assert run(m) == approx(run(make(0.5, from_logits)), abs=1e-7)  # 0.5 until set_thresh
    m.set_thresh(VEC)
    assert run(m) == approx(run(make(VEC, from_logits)), abs=1e-7)   # kfeed resets: the thresholds stay
    m.reset_state()
    m.update_state(Y, p)
    assert values(as_floats(m.result())) == approx(run(make(VEC, from_logits)), abs=1e-7)
    m.set_thresh(0.3)                                                # one value for every label
    assert run(m) == approx(run(make(0.3, from_logits)), abs=1e-7)

def test_set_thresh_checks():
    with pytest.raises(ValueError, match=r"`set_thresh` needs a metric created with thresh='tuned', but 'f1_macro_t0p5' has thresh=0.5"):
        K.FScore().set_thresh(VEC)
    m = K.FScore(thresh='tuned'); m.update_state(Y, PROBS)
    with pytest.raises(ValueError, match=r"Expected `thresh` to have one value per label \(6\), but got 3 values"): m.set_thresh([.1, .2, .3])
    with pytest.raises(ValueError, match=r"Expected `thresh` in \[0, 1\], but got 1.5"): m.set_thresh(1.5)

def test_set_thresh_before_the_first_batch():
    "BUG: thresholds known in advance (a saved `ThresholdSearch.best`) cannot be set before the first batch: AttributeError 'cut'."
    m = K.FScore(thresh='tuned')
    m.set_thresh(VEC)
    assert kfeed(m, Y, PROBS) == approx(kfeed(K.FScore(thresh=VEC), Y, PROBS), abs=1e-7)

# %% 5. the decision layer and the config round trip
DECISIONS = [(0.5, None, False), (VEC, None, False), (0.9, None, True), ([.9, .95, .9, .99, .9, .9], None, True), (0.5, 2, False),
             (0.5, 1, True), (0.75, None, False)]

@pytest.mark.parametrize('thresh,k,at_least_one', DECISIONS, ids=['t0p5', 'tvec', 't0p9_one', 'tvec_one', 'k2', 'k1', 't0p75'])
def test_decisions_match_the_fastai_loss(thresh, k, at_least_one):
    exp = MultiLabelBCELoss(thresh=thresh, k=k, at_least_one=at_least_one).decodes(torch.from_numpy(TIES)).numpy()
    assert np.array_equal(ops.convert_to_numpy(K.MultilabelDecision(thresh, k, at_least_one)(TIES)), exp)
    exp = MultiLabelBCELoss(thresh=thresh, k=k, at_least_one=at_least_one).decodes(torch.from_numpy(PROBS)).numpy()
    assert np.array_equal(ops.convert_to_numpy(K.MultilabelDecision(thresh, k, at_least_one, from_logits=True)(LOGITS)), exp)
    model = keras.Sequential([keras.Input((L,)), keras.layers.Identity()], name='probs')
    wrapped = K.with_decisions(model, thresh, k, at_least_one)
    assert wrapped.name == 'probs_decisions'
    assert np.array_equal(wrapped.predict(PROBS, verbose=0), exp)

ROUND_TRIP = {
    'accuracy_tvec_logits': lambda: K.ThresholdAccuracy(VEC, from_logits=True), 'subset_t0p3': lambda: K.SubsetAccuracy(0.3),
    'f2_weighted_zd1': lambda: K.FScore(2., 0.4, 'weighted', zero_division=1.), 'f1_samples_zdnan': lambda: K.FScore(average='samples', zero_division=NAN),
    'top3_contain': lambda: K.TopKAccuracy(3, 'contain'), 'precision_at2': lambda: K.PrecisionAtK(2), 'recall_at2_zd1': lambda: K.RecallAtK(2, 1.),
    'per_label_recall': lambda: K.PerLabelRecall(LABELS, 0.3), 'per_label_precision': lambda: K.PerLabelPrecision(LABELS, VEC, zero_division=1.),
    'per_label_f2_logits': lambda: K.PerLabelFScore(LABELS, 2., from_logits=True), 'default_labels': lambda: K.DefaultMetrics(LABELS, VEC),
    'renamed': lambda: K.FScore(name='my_f1'),
    'f1_micro_unknown': lambda: K.FScore(average='micro', ignore_index=-1), 'top2_unknown': lambda: K.TopKAccuracy(2, ignore_index=-1),
    'default_unknown': lambda: K.DefaultMetrics(LABELS, ignore_index=-1), 'map_weighted_b256': lambda: K.AveragePrecision('weighted', 256, ignore_index=-1),
    'roc_auc_logits': lambda: K.RocAuc(from_logits=True), 'ap_per_label': lambda: K.PerLabelAveragePrecision(LABELS, 200),
    'roc_auc_per_label': lambda: K.PerLabelRocAuc(LABELS, ignore_index=-1), 'lrap': lambda: K.LabelRankingAveragePrecision(ignore_index=-2),
    'coverage_logits': lambda: K.CoverageError(from_logits=True), 'ranking_loss': lambda: K.RankingLoss(),
    'paper': lambda: K.PaperMetrics(), 'paper_labels_tvec': lambda: K.PaperMetrics(LABELS, VEC, 2, True, -1, 512),
}

@pytest.mark.parametrize('name', ROUND_TRIP)
def test_metric_config_round_trip(name):
    m = ROUND_TRIP[name]()
    m2 = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(m))  # the path of model.save / load_model
    assert type(m2) is type(m) and m2.name == m.name and m2.get_config() == m.get_config()
    assert type(m).from_config(m.get_config()).get_config() == m.get_config()
    p = LOGITS if m.from_logits else PROBS
    assert kfeed(m2, Y, p) == approx(kfeed(m, Y, p), nan_ok=True)

def test_default_metrics_without_labels_config():
    "BUG: `default_metrics()` (no labels, the common case) has no config: `list(None)`, so `model.save` of a model compiled with it fails."
    m = K.default_metrics()[0]
    m2 = K.DefaultMetrics.from_config(m.get_config())
    assert m2.name == m.name == 'f1_macro_t0p5'
    assert kfeed(m2, Y, PROBS) == approx(kfeed(m, Y, PROBS))

def test_histogram_and_layer_config_round_trip():
    h = K.ScoreHistogram(200, from_logits=True, ignore_index=-1, name='hist')
    h2 = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(h))
    assert (h2.name, h2.n_bins, h2.from_logits, h2.ignore_index) == ('hist', 200, True, -1)
    for x in (h, h2): x.update_state(Y, LOGITS)
    assert np.array_equal(h.histogram(), h2.histogram())
    lay = K.MultilabelDecision(VEC, at_least_one=True, from_logits=True, name='decide')
    lay2 = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(lay))
    assert lay2.name == 'decide' and lay2.get_config() == lay.get_config()
    assert np.array_equal(ops.convert_to_numpy(lay2(LOGITS)), ops.convert_to_numpy(lay(LOGITS)))

# %% 6. the histogram of the threshold search, against the torch one
def torch_hist(n_bins, y, p, sigmoid=False, bs=64):
    h = ThresholdHistogram(n_bins, sigmoid=sigmoid)
    for i in range(0, len(p), bs): h.update(torch.from_numpy(p[i:i+bs]), torch.from_numpy(y[i:i+bs]))
    return h.compute().numpy()

def keras_hist(n_bins, y, p, from_logits=False, w=None, bs=64):
    h = K.ScoreHistogram(n_bins, from_logits)
    for i in range(0, len(p), bs): h.update_state(y[i:i+bs], p[i:i+bs], None if w is None else w[i:i+bs])
    return h.histogram()

@pytest.mark.parametrize('from_logits', [False, True])
@pytest.mark.parametrize('n_bins', [1024, 200])
def test_score_histogram_vs_torch(n_bins, from_logits):
    p = LOGITS if from_logits else PROBS
    got = keras_hist(n_bins, Y, p, from_logits)
    assert got.shape == (L, n_bins+1, 2) and got.sum() == N*L and (got[..., 1].sum(1) == Y.sum(0)).all()
    np.testing.assert_array_equal(got, torch_hist(n_bins, Y, p, from_logits))

@pytest.mark.parametrize('n_bins', [1024, 200])
def test_score_histogram_bin_edges_vs_torch(n_bins):
    "Probabilities exactly on the edges i/n_bins (float32), and one float32 step either side of them."
    e = (np.arange(n_bins+1) / n_bins).astype('float32')
    p = np.stack([e, e[::-1], np.nextafter(e, np.float32(1)), np.nextafter(e, np.float32(0)), e, e], 1)
    y = (np.arange(len(e))[:, None] % (np.arange(L) + 2) == 0).astype('float32')
    np.testing.assert_array_equal(keras_hist(n_bins, y, p), torch_hist(n_bins, y, p))

def test_score_histogram_sample_weight_repeats_samples():
    w = (np.arange(N) % 4).astype('float32')                      # 0 to 3 copies of each sample
    rep = np.repeat(np.arange(N), w.astype(int))
    np.testing.assert_array_equal(keras_hist(200, Y, PROBS, w=w), torch_hist(200, Y[rep], PROBS[rep]))

@pytest.mark.parametrize('n_bins,bad,match', [
    (200, 'targ2', "Expected `targs` to hold only 0 and 1"), (1024, 'targ_half', "Expected `targs` to hold only 0 and 1"),
    (200, 'pred_nan', "Expected finite `preds`"), (1024, 'pred_inf', "Expected finite `preds`"),
    (1024, 'range', r"Expected probabilities in \[0, 1\] in `preds`")])
def test_score_histogram_bad_values_raise_as_fastai(n_bins, bad, match):
    y,p,_ = _bad(bad) if bad != 'range' else (Y, PROBS * 1.5, None)
    h = K.ScoreHistogram(n_bins)
    for i in range(0, N, 64): h.update_state(y[i:i+64], p[i:i+64])
    with pytest.raises(ValueError, match=match): h.histogram()
    with pytest.raises(ValueError, match=match): torch_hist(n_bins, y, p)
    h.reset_state(); h.update_state(Y, PROBS)                     # a reset clears it
    np.testing.assert_array_equal(h.histogram(), torch_hist(n_bins, Y, PROBS))

# %% 7. names in Python format templates (ModelCheckpoint file names, `monitor=` keys)
def test_names_work_in_format_templates():
    metrics = [K.ThresholdAccuracy(0.25), K.ThresholdAccuracy(VEC), K.SubsetAccuracy(1e-5), K.FScore(0.5, 0.35, 'weighted', zero_division=1.),
               K.FScore(2., 'tuned', 'samples', zero_division=NAN), K.TopKAccuracy(3, 'contain'), K.PrecisionAtK(2), K.RecallAtK(2, 1.),
               K.PerLabelRecall(LABELS, 0.3), K.PerLabelPrecision(LABELS, VEC, zero_division=NAN), K.PerLabelFScore(LABELS, 0.5, 0.75),
               K.DefaultMetrics(LABELS, 0.05, from_logits=True)]
    names = []
    for m in metrics:
        r = kfeed(m, Y, PROBS, bs=N)
        names += [m.name] + (list(r) if isinstance(r, dict) else [])
    s = K.ThresholdSearch(beta=0.5, per_label=True, n_bins=200)
    names += [s.score_name[4:], s.thresh_name[4:], K.ThresholdSearch(metric='accuracy').score_name[4:]]
    for name in names:
        assert '.' not in name and ' ' not in name, name
        assert ('{val_' + name + ':.3f}').format(**{'val_' + name: 0.5}) == '0.500', name
    for exp in ['accuracy_t0p25', 'subset_accuracy_t1e-05', 'f0p5_weighted_t0p35_zd1', 'f2_samples_tuned_zdnan', 'top3_accuracy_contain',
                'precision_at2', 'recall_at2_zd1', 'recall_c_d_t0p3', 'recall_a_b_t0p3', 'recall_1_t0p3', 'recall_label-macro_t0p3',
                'recall_c_d-2_t0p3', 'f0p5_x_t0p75', 'f1_macro_t0p05', 'f1_micro_t0p05', 'accuracy_t0p05', 'f1_c_d-2_t0p05']:
        assert exp in names, exp

# %% 8. imports
def _python(code, backend='torch'):
    env = {**os.environ, 'KERAS_BACKEND': backend}
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, check=True).stdout.strip()

TOPS = "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastai', 'torch', 'keras'}))"

def test_keras_module_imports_no_fastai():
    assert _python("import sys, fastai_multilabel.keras; " + TOPS) == "['keras', 'torch']"   # torch: the Keras backend

def test_keras_module_on_jax_imports_no_torch():
    assert _python("import sys, fastai_multilabel.keras; " + TOPS, 'jax') == "['keras']"

def test_fastai_side_imports_no_keras():
    assert _python("import sys, fastai_multilabel, fastai_multilabel.all; " + TOPS) == "['fastai', 'torch']"

# %% 9. ranking metrics: against the fastai side's binned values (torch), scikit-learn's exact ones within the bound, and
# scikit-learn exactly where no two distinct scores share a bin; unknown entries (ignore_index) on every metric
import sklearn.metrics as skm
from fastai_multilabel import ranking as R

RANK_AVERAGES = ['macro', 'weighted', 'micro']
GRID = ((np.random.default_rng(3).integers(0, 64, (N, L)) * 16 + 0.5) / 1024).astype('float32')  # 64 values, one per bin of 1024: ties
UNKNOWN = np.random.default_rng(4).random((N, L)) < 0.15
UNKNOWN[7] = True                                              # a sample without any known label
YU = np.where(UNKNOWN, -1., Y).astype('float32')               # targets with unknown entries marked -1
KNOWN = ~UNKNOWN

def sk_ranking(kind, y, p, average, w=None, known=None):
    "scikit-learn's AP or ROC AUC on the `known` entries: per label (NaN where undefined), or averaged over the defined labels by `average`."
    fn = skm.average_precision_score if kind == 'ap' else skm.roc_auc_score
    known,w = np.ones(y.shape, bool) if known is None else known,np.ones(len(y)) if w is None else w
    if average == 'micro': return fn(y[known], p[known], sample_weight=np.broadcast_to(w[:, None], y.shape)[known])
    vals,n_pos = [],[]
    for j in range(y.shape[1]):
        k = known[:, j]
        pos,neg = (y[k, j] * w[k]).sum(),((1 - y[k, j]) * w[k]).sum()
        vals.append(np.nan if pos == 0 or (kind == 'auc' and neg == 0) else fn(y[k, j], p[k, j], sample_weight=w[k])); n_pos.append(pos)
    vals,n_pos = np.array(vals),np.array(n_pos)
    if average is None: return vals
    ok = ~np.isnan(vals)
    return np.average(vals[ok], weights=None if average == 'macro' else n_pos[ok])

def torch_ranking(kind, y, p, average, n_bins, sigmoid=False, ignore_index=None):
    "The fastai side's binned value (float64): `ranking.multilabel_average_precision` or `multilabel_roc_auc`."
    fn = R.multilabel_average_precision if kind == 'ap' else R.multilabel_roc_auc
    with pytest.warns(UserWarning) if average != 'micro' and kind == 'ap' else _no_warning():  # label 5 has no positives
        v = fn(torch.from_numpy(p), torch.from_numpy(y), average, sigmoid, n_bins, ignore_index)
    return v.numpy() if average is None else v.item()

def _no_warning():
    import contextlib, warnings
    cm = contextlib.ExitStack(); cm.enter_context(warnings.catch_warnings()); warnings.simplefilter('ignore'); return cm

RANKERS = {'ap': K.AveragePrecision, 'auc': K.RocAuc}

@pytest.mark.parametrize('from_logits', [False, True])
@pytest.mark.parametrize('n_bins', [1024, 200, 16])
@pytest.mark.parametrize('average', RANK_AVERAGES)
@pytest.mark.parametrize('kind', RANKERS)
def test_ranking_vs_torch_binned_and_sklearn_within_bound(kind, average, n_bins, from_logits):
    m = RANKERS[kind](average, n_bins, from_logits)
    assert m.name == ('map' if kind == 'ap' else 'roc_auc') + f'_{average}' + ('' if n_bins == 1024 else f'_b{n_bins}')
    got = kfeed(m, Y, LOGITS if from_logits else PROBS)       # batches of 64: the last one uneven
    exp = torch_ranking(kind, Y, LOGITS if from_logits else PROBS, average, n_bins, from_logits)
    assert got == approx(exp, abs=1e-5)
    t = torch.from_numpy(Y).bool()
    bound = R.ranking_error_bound(R.label_hist(torch.sigmoid(torch.from_numpy(LOGITS)) if from_logits else torch.from_numpy(PROBS), t, ~t, n_bins), average)
    assert abs(got - sk_ranking(kind, Y, PROBS, average)) <= bound[kind == 'auc'].item() + 1e-5
    if n_bins == 16: assert bound[kind == 'auc'].item() > 1e-3  # a coarse grid: the bound is not vacuous here

@pytest.mark.parametrize('weighted', [False, True])
@pytest.mark.parametrize('average', RANK_AVERAGES)
@pytest.mark.parametrize('kind', RANKERS)
def test_ranking_with_ties_on_distinct_bins_equals_sklearn(kind, average, weighted):
    "Scores on a grid whose values fall in distinct bins of 1024 (ties included): the binned value is scikit-learn's exact one."
    w = W if weighted else None
    for p in (GRID, TIES):
        assert kfeed(RANKERS[kind](average), Y, p, w) == approx(sk_ranking(kind, Y, p, average, w), abs=1e-5)

@pytest.mark.parametrize('kind', RANKERS)
def test_per_label_ranking_columns(kind):
    "One column per label named `ap_{label}`/`roc_auc_{label}`; label 5 (no positives) NaN; the averages leave it out."
    m = (K.PerLabelAveragePrecision if kind == 'ap' else K.PerLabelRocAuc)(LABELS, n_bins=256)
    got = kfeed(m, Y, PROBS, bs=50)
    prefix = 'ap' if kind == 'ap' else 'roc_auc'
    assert list(got) == [f'{prefix}_{l}_b256' for l in ['c_d', 'a_b', '1', 'label-macro', 'c_d-2', 'x']]
    assert m.name == f'{prefix}_per_label_b256'
    assert list(got.values()) == approx(torch_ranking(kind, Y, PROBS, None, 256).tolist(), abs=1e-5, nan_ok=True)
    assert math.isnan(got[f'{prefix}_x_b256'])
    assert kfeed(RANKERS[kind]('macro', 256), Y, PROBS) == approx(np.mean(list(got.values())[:5]), abs=1e-6)
    exact = kfeed((K.PerLabelAveragePrecision if kind == 'ap' else K.PerLabelRocAuc)(LABELS), Y, GRID)
    assert list(exact.values()) == approx(sk_ranking(kind, Y, GRID, None).tolist(), abs=1e-5, nan_ok=True)

SAMPLE_RANKERS = {'lrap': (K.LabelRankingAveragePrecision, skm.label_ranking_average_precision_score, R.label_ranking_average_precision),
                  'coverage_error': (K.CoverageError, skm.coverage_error, R.coverage_error),
                  'ranking_loss': (K.RankingLoss, skm.label_ranking_loss, R.label_ranking_loss)}

@pytest.mark.parametrize('data', ['probs', 'ties', 'grid', 'logits'])
@pytest.mark.parametrize('name', SAMPLE_RANKERS)
def test_sample_ranking_vs_sklearn(name, data):
    cls,sk,fa = SAMPLE_RANKERS[name]
    p = {'probs': PROBS, 'ties': TIES, 'grid': GRID, 'logits': LOGITS}[data]
    m = cls(from_logits=data == 'logits')
    assert m.name == name and m._direction == ('up' if name == 'lrap' else 'down')
    ref = PROBS if data == 'logits' else p
    assert kfeed(m, Y, p) == approx(sk(Y, ref), abs=1e-5)
    assert kfeed(m, Y, p, W) == approx(sk(Y, ref, sample_weight=W), abs=1e-5)
    assert kfeed(m, Y, p, bs=37) == approx(fa(torch.from_numpy(p), torch.from_numpy(Y), sigmoid=data == 'logits').item(), abs=1e-5)

def test_sample_ranking_ties_by_hand():
    p = np.array([[.9, .2, .6, .2], [.1, .5, .5, .3], [.5, .5, .5, .5]], 'float32')
    t = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [1, 0, 1, 0]], 'float32')
    assert kfeed(K.LabelRankingAveragePrecision(), t, p) == approx(((1 + 2/4)/2 + 1/2 + 2/4) / 3)  # all tied: each true label at rank 4
    assert kfeed(K.CoverageError(), t, p) == approx((4 + 2 + 4) / 3)
    assert kfeed(K.RankingLoss(), t, p) == approx((2/4 + 1/3 + 1) / 3)

# %% 9b. unknown entries
def known_counts(y, pm, known, w=None):
    "Per-label tp, fp, fn, tn of the known entries (weighted by sample)."
    t,pm = y == 1,pm & known
    w = np.ones(len(y)) if w is None else w
    c = lambda m: ((m & known) * w[:, None]).sum(0)
    return c(pm & t),c(pm & ~t),c(~pm & t),c(~pm & ~t)

def np_f1(tp, fp, fn, zd=0.): return np.where(2*tp + fp + fn > 0, 2*tp / np.maximum(2*tp + fp + fn, 1e-12), zd)

@pytest.mark.parametrize('weighted', [False, True])
@pytest.mark.parametrize('thresh', THRESHES, ids=TIDS)
def test_ignore_index_thresholded_vs_sklearn_on_known(thresh, weighted):
    w,pm = W if weighted else None,mask(PROBS, thresh)
    tp,fp,fn,tn = known_counts(Y, pm, KNOWN, w)
    per_label = [f1_score_known(j, pm, w) for j in range(L)]
    assert tp + fp + fn + tn == approx(((KNOWN * (1 if w is None else w[:, None])).sum(0)))
    assert kfeed(K.FScore(thresh=thresh, ignore_index=-1), YU, PROBS, w) == approx(np.mean(per_label), abs=1e-5)
    assert kfeed(K.FScore(thresh=thresh, average='weighted', ignore_index=-1), YU, PROBS, w) == approx(np.average(per_label, weights=tp + fn), abs=1e-5)
    ww = None if w is None else np.broadcast_to(w[:, None], Y.shape)[KNOWN]
    assert kfeed(K.FScore(thresh=thresh, average='micro', ignore_index=-1), YU, PROBS, w) == approx(fbeta_score(Y[KNOWN], pm[KNOWN], beta=1., sample_weight=ww), abs=1e-5)
    assert kfeed(K.ThresholdAccuracy(thresh, ignore_index=-1), YU, PROBS, w) == approx(accuracy_score(Y[KNOWN], pm[KNOWN], sample_weight=ww), abs=1e-5)
    assert kfeed(K.HammingLoss(thresh, ignore_index=-1), YU, PROBS, w) == approx(1 - accuracy_score(Y[KNOWN], pm[KNOWN], sample_weight=ww), abs=1e-5)
    got = kfeed(K.DefaultMetrics(LABELS, thresh, ignore_index=-1), YU, PROBS, w)
    assert list(got.values()) == approx([np.mean(per_label), fbeta_score(Y[KNOWN], pm[KNOWN], beta=1., sample_weight=ww),
                                         accuracy_score(Y[KNOWN], pm[KNOWN], sample_weight=ww), *per_label], abs=1e-5)
    assert list(kfeed(K.PerLabelRecall(LABELS, thresh, ignore_index=-1), YU, PROBS, w).values()) == approx(
        [recall_score(Y[KNOWN[:, j], j], pm[KNOWN[:, j], j], zero_division=0, sample_weight=None if w is None else w[KNOWN[:, j]]) for j in range(L)], abs=1e-5)

def f1_score_known(j, pm, w=None):
    k = KNOWN[:, j]
    return fbeta_score(Y[k, j], pm[k, j], beta=1., zero_division=0, sample_weight=None if w is None else w[k])

def per_sample_known(score, pm, w=None):
    "Mean of `score(t, pm)` over the samples with a known label, each on its known labels."
    rows = [i for i in range(N) if KNOWN[i].any()]
    assert len(rows) == N - 1                                 # sample 7 has no known label: left out
    s = [score(Y[i, KNOWN[i]], pm[i, KNOWN[i]]) for i in rows]
    return np.average(s, weights=None if w is None else w[rows])

@pytest.mark.parametrize('weighted', [False, True])
def test_ignore_index_per_sample_vs_sklearn_on_known(weighted):
    w,pm = W if weighted else None,mask(PROBS, 0.4)
    f1 = lambda t, m: fbeta_score(t, m, beta=1., zero_division=0)
    assert kfeed(K.FScore(thresh=0.4, average='samples', ignore_index=-1), YU, PROBS, w) == approx(per_sample_known(f1, pm, w), abs=1e-5)
    assert kfeed(K.SubsetAccuracy(0.4, ignore_index=-1), YU, PROBS, w) == approx(per_sample_known(lambda t, m: float((t == m).all()), pm, w), abs=1e-5)
    assert kfeed(K.Jaccard(0.4, 'samples', ignore_index=-1), YU, PROBS, w) == approx(
        per_sample_known(lambda t, m: skm.jaccard_score(t, m, zero_division=0), pm, w), abs=1e-5)

@pytest.mark.parametrize('k', [1, 2, 3])
def test_ignore_index_topk_among_known_labels(k):
    "Top-k picks the k best known labels (all of them when fewer are known); lowest index first among ties, as without unknowns."
    top = np_topk(np.where(KNOWN, TIES, -np.inf), k) & KNOWN
    assert kfeed(K.TopKAccuracy(k, ignore_index=-1), YU, TIES) == approx(per_sample_known(lambda t, m: (t == m).mean(), top), abs=1e-5)
    assert kfeed(K.TopKAccuracy(k, 'overlap', ignore_index=-1), YU, TIES, W) == approx(per_sample_known(lambda t, m: float((t * m).any()), top, W), abs=1e-5)
    assert kfeed(K.PrecisionAtK(k, ignore_index=-1), YU, TIES) == approx(per_sample_known(lambda t, m: (t * m).sum() / m.sum(), top), abs=1e-5)
    assert kfeed(K.RecallAtK(k, 1., ignore_index=-1), YU, TIES) == approx(per_sample_known(lambda t, m: (t * m).sum() / t.sum() if t.sum() else 1., top), abs=1e-5)

@pytest.mark.parametrize('kind', RANKERS)
@pytest.mark.parametrize('average', RANK_AVERAGES)
def test_ignore_index_ranking_vs_torch_and_sklearn_on_known(average, kind):
    got = kfeed(RANKERS[kind](average, ignore_index=-1), YU, PROBS)
    assert got == approx(torch_ranking(kind, YU, PROBS, average, 1024, ignore_index=-1), abs=1e-5)
    assert kfeed(RANKERS[kind](average, ignore_index=-1), YU, GRID, W) == approx(sk_ranking(kind, Y, GRID, average, W, KNOWN), abs=1e-5)
    per_label = kfeed((K.PerLabelAveragePrecision if kind == 'ap' else K.PerLabelRocAuc)(LABELS, ignore_index=-1), YU, GRID)
    assert list(per_label.values()) == approx(sk_ranking(kind, Y, GRID, None, known=KNOWN).tolist(), abs=1e-5, nan_ok=True)

@pytest.mark.parametrize('name', SAMPLE_RANKERS)
def test_ignore_index_sample_ranking_vs_torch_and_sklearn_on_known(name):
    cls,sk,fa = SAMPLE_RANKERS[name]
    got = kfeed(cls(ignore_index=-1), YU, TIES)
    assert got == approx(fa(torch.from_numpy(TIES), torch.from_numpy(YU), ignore_index=-1).item(), abs=1e-5)
    trivial = {'lrap': 1., 'coverage_error': 0., 'ranking_loss': 0.}[name]  # a sample without known labels, as the fastai side
    per = [sk(Y[i:i+1, KNOWN[i]], TIES[i:i+1, KNOWN[i]]) if KNOWN[i].any() else trivial for i in range(N)]
    assert got == approx(np.mean(per), abs=1e-5)

def test_ignore_index_histogram_leaves_unknown_out():
    h = keras_hist_unknown = K.ScoreHistogram(200, ignore_index=-1)
    for i in range(0, N, 64): h.update_state(YU[i:i+64], PROBS[i:i+64])
    t = torch.from_numpy(Y).bool(); k = torch.from_numpy(KNOWN)
    np.testing.assert_array_equal(h.histogram(), R.label_hist(torch.from_numpy(PROBS), t & k, ~t & k, 200).numpy())
    assert keras_hist_unknown.histogram().sum() == KNOWN.sum()
    assert K.ThresholdSearch(ignore_index=-1).histogram.ignore_index == -1

def test_ignore_index_without_unknown_entries_changes_nothing():
    """Same values with and without `ignore_index` when no entry is unknown; the default path keeps its 3 counts per label
    (plus the per-label sums of bad values and the sample count, in the same variable)."""
    for make in (lambda ii: K.FScore(ignore_index=ii), lambda ii: K.FScore(average='samples', ignore_index=ii),
                 lambda ii: K.TopKAccuracy(2, ignore_index=ii), lambda ii: K.DefaultMetrics(LABELS, ignore_index=ii),
                 lambda ii: K.PaperMetrics(LABELS, ignore_index=ii), lambda ii: K.LabelRankingAveragePrecision(ignore_index=ii)):
        assert kfeed(make(-1), Y, PROBS, W) == approx(kfeed(make(None), Y, PROBS, W), abs=1e-6, nan_ok=True)
    m = K.FScore(); m.update_state(Y, PROBS)
    assert tuple(m.counts.shape) == (3 + 2, L) and m.get_config()['ignore_index'] is None

# %% 9c. the papers' table
@pytest.mark.parametrize('from_logits,ignore_index', [(False, None), (True, None), (False, -1), (True, -1)])
@pytest.mark.parametrize('thresh,k', [(0.5, 3), (VEC, 1), (0.3, 2)], ids=['t0p5_k3', 'tvec_k1', 't0p3_k2'])
def test_paper_metrics_vs_torch(thresh, k, from_logits, ignore_index):
    y,p = (Y if ignore_index is None else YU),(LOGITS if from_logits else PROBS)
    m, = K.paper_metrics(LABELS, thresh, k, from_logits, ignore_index)
    got = kfeed(m, y, p)
    with _no_warning(): exp = R.paper_scores(torch.from_numpy(p), torch.from_numpy(y), thresh, k, from_logits, ignore_index, 1024)
    tag = 't0p5' if thresh == 0.5 else 't0p3' if thresh == 0.3 else m.columns[1][3:]
    names = {'mAP': 'map_macro', **{s: f'{s.lower()}_{tag}' for s in ('CP', 'CR', 'CF1', 'OP', 'OR', 'OF1')},
             **{f'{s}_top{k}': f'{s.lower()}_top{k}' for s in ('CP', 'CR', 'CF1', 'OP', 'OR', 'OF1')}}
    assert list(got)[:13] == list(names.values()) and m.name == 'map_macro'
    assert {names[n]: got[names[n]] for n in exp} == approx({names[n]: v for n,v in exp.items()}, abs=1e-5)
    ap = torch_ranking('ap', y, p, None, 1024, from_logits, ignore_index)
    assert list(got.values())[13:] == approx(ap.tolist(), abs=1e-5, nan_ok=True)

def test_paper_metrics_names_and_bins():
    m, = K.paper_metrics(k=5, n_bins=256)
    assert m.columns == ['map_macro_b256'] + [f'{s}_{t}' for t in ('t0p5', 'top5') for s in ('cp', 'cr', 'cf1', 'op', 'or', 'of1')]
    assert K.PaperMetrics(['a', 'b'], thresh='tuned').columns[1:3] == ['cp_tuned', 'cr_tuned']
    assert K.PaperMetrics(['a', 'b'], thresh='tuned').columns[-2:] == ['ap_a', 'ap_b']
    assert kfeed(K.PaperMetrics(n_bins=200), Y, PROBS)['map_macro_b200'] == approx(torch_ranking('ap', Y, PROBS, 'macro', 200), abs=1e-5)

def test_paper_metrics_tuned_by_the_search():
    m = K.PaperMetrics(thresh='tuned'); m.set_thresh(VEC)
    got,exp = kfeed(m, Y, PROBS),kfeed(K.PaperMetrics(thresh=VEC), Y, PROBS)
    assert list(got.values()) == approx(list(exp.values()), abs=1e-7)

# %% 9d. bad input, names
RANK_BAD = {
    'n_bins0': (lambda: K.AveragePrecision(n_bins=0), ValueError, "Expected `n_bins` to be an int >= 1, but got 0"),
    'n_bins_none': (lambda: K.RocAuc(n_bins=None), ValueError, "Expected `n_bins` to be an int >= 1, but got None"),
    'n_bins_float': (lambda: K.PerLabelAveragePrecision(LABELS, n_bins=256.), ValueError, "Expected `n_bins` to be an int >= 1, but got 256.0"),
    'n_bins_paper': (lambda: K.paper_metrics(n_bins=-1), ValueError, "Expected `n_bins` to be an int >= 1, but got -1"),
    'average_samples': (lambda: K.AveragePrecision('samples'), ValueError, r"Expected `average` to be one of \('micro', 'macro', 'weighted'\), but got 'samples'"),
    'average_none': (lambda: K.RocAuc(None), ValueError, r"Expected `average` to be one of \('micro', 'macro', 'weighted'\), but got None"),
    'labels_str': (lambda: K.PerLabelRocAuc('abc'), TypeError, r"Expected `labels` to be a sequence of label names"),
    'labels_len': (lambda: K.PerLabelAveragePrecision(['a', 'b']).update_state(Y, PROBS), ValueError, r"Expected `labels` to name every output \(6\), but got 2 labels"),
    'paper_k': (lambda: K.PaperMetrics(k=7).update_state(Y, PROBS), ValueError, r"Expected `k` <= the number of labels \(6\), but got 7"),
    'paper_k0': (lambda: K.paper_metrics(k=0), ValueError, "Expected `k` >= 1, but got 0"),
    'paper_thresh_len': (lambda: K.PaperMetrics(['a', 'b', 'c'], thresh=[.2, .3]), ValueError, r"Expected `thresh` to have one value per label \(3\), but got 2 values"),
    'default_thresh_len': (lambda: K.DefaultMetrics(['a', 'b', 'c'], thresh=[.2, .3]), ValueError, r"Expected `thresh` to have one value per label \(3\), but got 2 values"),
    'shape': (lambda: K.LabelRankingAveragePrecision().update_state(Y[:, :4], PROBS), ValueError, r"Expected `targs` to have the shape of `preds` \(300, 6\), but got \(300, 4\)"),
    'ignore_1': (lambda: K.FScore(ignore_index=1), ValueError, r"Expected `ignore_index` to be None or an int other than 0 and 1 \(the target value of an unknown entry, such as -1\), but got 1"),
    'ignore_float': (lambda: K.AveragePrecision(ignore_index=-0.5), ValueError, r"Expected `ignore_index` to be None or an int other than 0 and 1 .* but got -0.5"),
    'ignore_hist': (lambda: K.ScoreHistogram(ignore_index=0), ValueError, r"Expected `ignore_index` to be None or an int .* but got 0"),
    'ignore_search': (lambda: K.ThresholdSearch(ignore_index='-1'), ValueError, r"Expected `ignore_index` .* but got '-1'"),
    'ignore_default': (lambda: K.default_metrics(ignore_index=True), ValueError, r"Expected `ignore_index` .* but got True"),
}

@pytest.mark.parametrize('case', RANK_BAD)
def test_ranking_and_unknown_bad_input(case):
    fn,exc,match = RANK_BAD[case]
    with pytest.raises(exc, match=match): fn()

def test_unknown_marker_other_than_ignore_index_is_bad():
    "A -1 target without `ignore_index`, or a 2 with `ignore_index=-1`: NaN until reset, never a plausible number."
    y2 = YU.copy(); y2[5, 1] = 2
    for m,y in [(K.FScore(), YU), (K.AveragePrecision(), YU), (K.LabelRankingAveragePrecision(), YU), (K.FScore(ignore_index=-1), y2),
                (K.PaperMetrics(ignore_index=-1), y2), (K.AveragePrecision(ignore_index=-2), YU), (K.PerLabelRocAuc(LABELS), YU)]:
        assert all(np.isnan(v) for v in values(kfeed(m, y, PROBS))), m.name
    h = K.ScoreHistogram(ignore_index=-1); h.update_state(y2, PROBS)
    with pytest.raises(ValueError, match="Expected `targs` to hold only 0 and 1"): h.histogram()

def test_ranking_probabilities_out_of_range_are_bad():
    for m in (K.AveragePrecision(), K.RankingLoss(), K.PaperMetrics()):
        assert all(np.isnan(v) for v in values(kfeed(m, Y, LOGITS))), m.name  # logits without from_logits
        assert not any(np.isnan(v) for v in values(kfeed(m, Y, PROBS))[:7])

def test_ranking_names_work_in_format_templates():
    metrics = [K.AveragePrecision(), K.AveragePrecision('micro', 256), K.RocAuc('weighted'), K.PerLabelAveragePrecision(LABELS),
               K.PerLabelRocAuc(LABELS, 512), K.LabelRankingAveragePrecision(), K.CoverageError(), K.RankingLoss(), K.PaperMetrics(LABELS, 0.35, 2)]
    names = []
    for m in metrics:
        r = kfeed(m, Y, PROBS, bs=N)
        names += [m.name] + (list(r) if isinstance(r, dict) else [])
    for name in names:
        assert '.' not in name and ' ' not in name, name
        assert ('{val_' + name + ':.3f}').format(**{'val_' + name: 0.5}) == '0.500', name
    for exp in ['map_macro', 'map_micro_b256', 'roc_auc_weighted', 'ap_c_d', 'ap_label-macro', 'roc_auc_c_d-2_b512', 'roc_auc_per_label_b512',
                'lrap', 'coverage_error', 'ranking_loss', 'cp_t0p35', 'of1_t0p35', 'cf1_top2', 'or_top2', 'ap_x']:
        assert exp in names, exp

# %% 9e. in a model: columns in History equal to the fastai side's values on `model.predict`
def test_fit_logs_ranking_and_paper_columns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8)).astype('float32')
    y = (x[:, :4] + rng.normal(size=(400, 4)) > 0.5).astype('float32')
    y[::5, 2] = -1                                           # some unknown entries
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation='sigmoid')])
    def masked_bce(yt, yp):  # the loss leaves the unknown entries out too
        k,yt,yp = ops.cast(yt >= 0, 'float32'),ops.maximum(yt, 0.),ops.clip(yp, 1e-7, 1 - 1e-7)
        return -ops.sum(k * (yt * ops.log(yp) + (1 - yt) * ops.log(1 - yp))) / ops.maximum(ops.sum(k), 1.)
    model.compile('adam', masked_bce, metrics=[K.AveragePrecision(ignore_index=-1), K.LabelRankingAveragePrecision(ignore_index=-1),
                                                          *K.paper_metrics(['a', 'b', 'c', 'd'], k=2, ignore_index=-1)])
    search = K.ThresholdSearch(n_bins=None, validation_data=(x[300:], y[300:]), per_label=True, ignore_index=-1, apply=False)
    hist = model.fit(x[:300], y[:300], validation_data=(x[300:], y[300:]), epochs=2, batch_size=64, verbose=0, callbacks=[search]).history
    for c in ('map_macro', 'lrap', 'cp_t0p5', 'of1_top2', 'ap_c'): assert c in hist and f'val_{c}' in hist and len(hist[f'val_{c}']) == 2
    p,yv = torch.from_numpy(np.asarray(model.predict(x[300:], verbose=0), 'float32')),torch.from_numpy(y[300:])
    assert hist['val_map_macro'][-1] == approx(R.multilabel_average_precision(p, yv, n_bins=1024, ignore_index=-1).item(), abs=1e-5)
    assert hist['val_lrap'][-1] == approx(R.label_ranking_average_precision(p, yv, ignore_index=-1).item(), abs=1e-5)
    exp = R.paper_scores(p, yv, k=2, ignore_index=-1, n_bins=1024)
    from fastai_multilabel.thresholds import best_thresholds   # the exact search leaves the unknown entries out
    np.testing.assert_array_equal(search.label_thresh, best_thresholds(p, yv, ignore_index=-1)[0].numpy())
    assert [hist[f'val_{c}'][-1] for c in ('cp_t0p5', 'of1_t0p5', 'cr_top2', 'op_top2')] == approx([exp['CP'], exp['OF1'], exp['CR_top2'], exp['OP_top2']], abs=1e-5)

def test_histogram_codes_past_float32_integers():
    "1025 labels x 8192 bins x 2 > 2**24 codes: the codes are integers, so the last label's top bin is still counted where it belongs."
    rng = np.random.default_rng(0)
    p = rng.random((4, 1025)).astype('float32'); p[:, -1] = 1.; y = (rng.random((4, 1025)) < .5).astype('float32'); y[:, -1] = 1
    h = K.ScoreHistogram(8191)
    h.update_state(y, p)
    t = torch.from_numpy(y).bool()
    np.testing.assert_array_equal(h.histogram(), R.label_hist(torch.from_numpy(p), t, ~t, 8191).numpy())
    assert h.histogram()[-1, -1, 1] == 4

def test_threshold_search_keeps_fractional_weights():
    "Fractional sample weights reach the search unrounded: its thresholds are those of the weighted histogram."
    from fastai_multilabel.thresholds import best_thresholds_binned
    w = np.full((N, 1), .3, 'float32'); w[::3] = 1.7
    search = K.ThresholdSearch(n_bins=64, per_label=True, apply=False)
    h = search.histogram
    for i in range(0, N, 64): h.update_state(Y[i:i+64], PROBS[i:i+64], sample_weight=w[i:i+64])
    exp = best_thresholds_binned(torch.from_numpy(h.histogram().astype('float64')))[0].numpy()
    search._validated = True
    search.on_epoch_end(0, {})
    np.testing.assert_array_equal(search.label_thresh, exp)
    assert not np.array_equal(exp, best_thresholds_binned(torch.from_numpy(h.histogram().round().astype('int64')))[0].numpy())

# %% 9f. parity with the fastai side: the search's constraints, its per-label score, failing before training; paper zero_division
def search_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 4)).astype('float32'); y = (x[:, :3] + .5 * rng.normal(size=(256, 3)) > 0).astype('float32')
    return (x[:192], y[:192]), (x[192:], y[192:])

def fit_search(search, metrics, seen=None):
    "Two epochs of a small model with `search`; `seen` collects the epochs that ended."
    (x, y), valid = search_data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation='sigmoid', kernel_initializer='identity')])  # a fair start
    model.compile('adam', 'binary_crossentropy', metrics=metrics)
    rec = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: (seen if seen is not None else []).append(e))
    hist = model.fit(x, y, validation_data=valid, epochs=2, batch_size=64, verbose=0, callbacks=[search, rec]).history
    return model, hist, valid

@pytest.mark.parametrize('metrics,compiled', [(None, ''), ([K.FScore()], "'f1_macro_t0p5'")], ids=['no_metrics', 'without_histogram'])
def test_search_without_its_histogram_fails_before_training(metrics, compiled):
    seen = []
    with pytest.raises(ValueError, match=r"compiled without it: pass it in `metrics=` of `model.compile` \(compiled: \[" + compiled + r"\]\)"):
        fit_search(K.ThresholdSearch(), metrics, seen)
    assert seen == []  # before the first epoch, not after the whole training

@pytest.mark.parametrize('per_label', [False, True], ids=['global', 'per_label'])
@pytest.mark.parametrize('kw', [dict(min_precision=.8), dict(min_recall=.9), dict(min_precision=.97)], ids=['p0p8', 'r0p9', 'p0p97'])
def test_search_with_a_constraint_as_the_fastai_search(kw, per_label):
    from fastai_multilabel.thresholds import best_thresholds
    from fastai_multilabel.callback.threshold import ThresholdSearch as FastaiSearch
    search = K.ThresholdSearch(n_bins=None, per_label=per_label, validation_data=search_data()[1], apply=False, **kw)
    model, hist, (xv, yv) = fit_search(search, [K.FScore()])
    assert [search.score_name, search.thresh_name] == ['val_' + c.name for c in FastaiSearch(per_label=per_label, **kw).columns]
    p,y = torch.from_numpy(np.asarray(model.predict(xv, verbose=0), 'float32')),torch.from_numpy(yv)
    lth,lsc = best_thresholds(p, y, **kw)
    np.testing.assert_array_equal(search.label_thresh, lth.numpy()); np.testing.assert_array_equal(search.label_scores, lsc.numpy())
    th,sc = (lth,lsc.nanmean()) if per_label else best_thresholds(p, y, per_label=False, **kw)  # NaN: a label that cannot meet it
    assert search.thresh == approx(float(th.mean())) and search.score == approx(float(sc)) and not math.isnan(search.score)
    assert hist[search.score_name] == approx([h['score'] for h in search.history]) and len(search.history) == 2

def test_search_per_label_score_leaves_out_nan_labels():
    "A label without positives cannot reach any precision (its score NaN); the per-label score is the mean of the others, as on the fastai side."
    xv,yv = search_data()[1]; yv = yv.copy(); yv[:, 2] = 0
    search = K.ThresholdSearch(n_bins=None, per_label=True, validation_data=(xv, yv), apply=False, min_precision=.8)
    with pytest.warns(UserWarning, match=r"1 label\(s\) cannot reach precision 0.8 \(threshold 1.0, score NaN\): 2"): fit_search(search, None)
    assert np.isnan(search.label_scores).tolist() == [False, False, True]
    assert search.score == approx(float(np.nanmean(search.label_scores)))

def test_search_constraint_checks():
    with pytest.raises(ValueError, match=r"Expected n_bins=None with a constraint \(searched exactly\), but got n_bins=1024"): K.ThresholdSearch(min_precision=.9)
    with pytest.raises(ValueError, match=r"Expected exactly one of `min_precision` and `min_recall`, but got min_precision=0.9, min_recall=0.8"):
        K.ThresholdSearch(n_bins=None, validation_data=search_data()[1], min_precision=.9, min_recall=.8)
    with pytest.raises(ValueError, match=r"Expected min_pos=0 with a constraint, but got min_pos=3"):
        K.ThresholdSearch(n_bins=None, validation_data=search_data()[1], min_recall=.8, min_pos=3)

@pytest.mark.parametrize('zero_division', [0., 1.])
def test_paper_metrics_zero_division_as_fastai(zero_division):
    "Label 4 is never predicted (0/0 precision) and label 5 has no positives (0/0 recall): `zero_division` decides both, as on the fastai side."
    m, = K.paper_metrics(k=2, zero_division=zero_division)
    got = kfeed(m, Y, PROBS)
    exp = {f.name: float(f(torch.from_numpy(PROBS), torch.from_numpy(Y))) for f in F.paper_metrics(k=2, sigmoid=False, zero_division=zero_division)}
    assert list(got) == list(exp) and m.get_config()['zero_division'] == zero_division
    assert got == approx(exp, abs=1e-5)
    if zero_division: assert got['cp_t0p5_zd1'] > kfeed(K.paper_metrics(k=2)[0], Y, PROBS)['cp_t0p5']

@pytest.mark.parametrize('name', ['f1_macro', 'f1_samples', 'top2', 'default', 'map_macro', 'lrap'])
def test_an_empty_batch_adds_nothing(name):
    "A batch of no rows is neither bad nor counted: the value is that of the other batches."
    m = NAN_METRICS[name]()
    m.update_state(Y[:0], PROBS[:0])
    for i in range(0, len(Y), 64): m.update_state(Y[i:i+64], PROBS[i:i+64])
    assert as_floats(m.result()) == approx(kfeed(NAN_METRICS[name](), Y, PROBS))

def test_default_metrics_top_k_column_by_hand():
    "The top-k column of `default_metrics(k=)`: the hamming score of each sample's k best labels, lowest index first among ties."
    y = np.array([[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 0, 0]], 'float32')
    p = np.array([[.9, .8, .7, .1], [.5, .5, .5, .5], [.2, .6, .6, .1]], 'float32')
    # top 2: {0, 1} (1 hit, 1 fp, 1 fn: 2/4 right), {0, 1} (ties: 0 hits, 2 fp, 1 fn: 1/4), {1, 2} (1 hit, 1 fp, 1 fn: 2/4)
    r = kfeed(K.DefaultMetrics(k=2), y, p, bs=2)
    assert list(r) == ['f1_macro_t0p5', 'f1_micro_t0p5', 'accuracy_t0p5', 'top2_accuracy']
    assert r['top2_accuracy'] == approx((2/4 + 1/4 + 2/4) / 3)
    assert r == approx(kfeed(K.DefaultMetrics(), y, p) | {'top2_accuracy': kfeed(K.TopKAccuracy(2), y, p)})
    # the mean kept as a total of hits (no unknown entries) or per sample (with them), with sample weights: as TopKAccuracy
    w = np.linspace(0., 2., len(Y)).astype('float32')
    for ii,yy in ((None, Y), (-1, np.where(np.arange(Y.size).reshape(Y.shape) % 7 == 0, -1., Y).astype('float32'))):
        for ww in (None, w):
            got = kfeed(K.DefaultMetrics(k=3, ignore_index=ii), yy, PROBS, ww)['top3_accuracy']
            assert got == approx(kfeed(K.TopKAccuracy(3, ignore_index=ii), yy, PROBS, ww), abs=1e-6)
    with pytest.raises(ValueError, match="Expected `k` >= 1, but got 0"): K.DefaultMetrics(k=0)
    m = K.DefaultMetrics(k=5)
    with pytest.raises(ValueError, match="Expected `k`"): m.update_state(y, p)
    assert K.DefaultMetrics.from_config(K.DefaultMetrics(['a', 'b', 'c', 'd'], k=2).get_config()).columns[3] == 'top2_accuracy'

# %% many columns as one vector
def test_columns_is_a_read_only_dict_of_the_values():
    "A many-column result reads as a dict of NumPy floats (one transfer), refuses assignments, and pickles and compares as its values."
    import pickle
    m = K.PerLabelRecall(['a', 'b', 'c', 'd', 'e', 'f']); m.update_state(Y, PROBS)
    r = m.result()
    exp = recall_score(Y, mask(PROBS, .5), average=None, zero_division=0)
    assert isinstance(r, K.Columns) and isinstance(r, dict) and len(r) == 6 and 'recall_c_t0p5' in r
    assert list(r) == list(r.keys()) == [f'recall_{l}_t0p5' for l in 'abcdef']
    assert [float(v) for v in r.values()] == approx(exp.tolist(), abs=1e-7) and all(isinstance(v, np.float32) for v in r.values())
    assert r['recall_b_t0p5'] == approx(exp[1], abs=1e-7) and r.get('nope', -1) == -1 and r.get('recall_b_t0p5') == r['recall_b_t0p5']
    assert dict(r) == r == pickle.loads(pickle.dumps(r)) == r.copy() and r != {**r, 'recall_a_t0p5': 2.}
    assert repr(r).startswith("Columns({'recall_a_t0p5': ")
    with pytest.raises(KeyError): r['nope']
    with pytest.raises(TypeError, match="Columns are read-only, but got an assignment to 'recall_a_t0p5'"): r['recall_a_t0p5'] = 0.
    assert torch.is_tensor(r.vector) and r.names == tuple(r)

def test_half_precision_predictions_count_in_float32():
    "float16 predictions give the values of their float32 copies: the counts are float32 (a float16 sum of 3001 ones reads 3000)."
    rng = np.random.default_rng(0)
    y = (rng.random((3001, 3)) < .9).astype('float32'); p = rng.random((3001, 3)).astype('float16')
    p[:, 0] = .75  # label 0 predicted for all 3001 samples
    pm = p.astype('float32') > .5
    exp = fbeta_score(y, pm, beta=1., average='macro', zero_division=0)
    assert kfeed(K.FScore(), y, p, bs=3001) == approx(exp, abs=1e-6)
    r = kfeed(K.DefaultMetrics(), y, p, bs=3001)
    assert r['f1_macro_t0p5'] == approx(exp, abs=1e-6) and r['accuracy_t0p5'] == approx(accuracy_score(y.ravel(), pm.ravel()), abs=1e-6)
