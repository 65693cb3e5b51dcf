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
    elif kind == 'targ_nan': y[299, 0] = NAN
    elif kind == 'pred_nan': p[200, 2] = l[200, 2] = NAN
    elif kind == 'pred_inf': p[10, 0] = np.inf; l[10, 0] = -np.inf
    return y,p,l

NAN_METRICS = {'f1_macro': lambda: K.FScore(), 'f1_samples': lambda: K.FScore(average='samples'), 'f1_micro_logits': lambda: K.FScore(average='micro', from_logits=True),
               'accuracy': lambda: K.ThresholdAccuracy(), 'subset': lambda: K.SubsetAccuracy(VEC), 'top2': lambda: K.TopKAccuracy(2),
               'precision_at2': lambda: K.PrecisionAtK(2), 'recall_at2': lambda: K.RecallAtK(2), 'per_label': lambda: K.PerLabelRecall(LABELS),
               'default': lambda: K.DefaultMetrics(LABELS)}

@pytest.mark.parametrize('bad', ['targ2', 'targ_half', 'targ_nan', 'pred_nan', 'pred_inf'])
@pytest.mark.parametrize('name', NAN_METRICS)
def test_bad_values_give_nan_until_reset(name, bad):
    m = NAN_METRICS[name]()
    y,p,l = _bad(bad)
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
    h = K.ScoreHistogram(200, from_logits=True, name='hist')
    h2 = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(h))
    assert (h2.name, h2.n_bins, h2.from_logits) == ('hist', 200, True)
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
