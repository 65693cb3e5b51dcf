"ThresholdSearch in a real fit, decoding rules through get_preds/predict/export, tune_thresholds and label_report."
import warnings, pytest, torch
import numpy as np, pandas as pd
from sklearn.metrics import f1_score, precision_recall_fscore_support
from fastai.tabular.all import TabularDataLoaders, MultiCategoryBlock, tabular_learner, load_learner, BCEWithLogitsLossFlat
from fastai_multilabel.all import *
from fastai_multilabel.names import thresh_tag
from helpers import record

LABELS = ['cat', 'dog', 'bird', 'rare']
warnings.filterwarnings('ignore', category=FutureWarning)

@pytest.fixture(scope='module')
def df():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1300, 8))
    Y = (X @ rng.normal(size=(8, 4)) + rng.normal(size=(1300, 4)) > [0.3, 1.2, 2.2, 3.6]).astype(float)
    d = pd.DataFrame(X, columns=[f'x{i}' for i in range(8)]); d[LABELS] = Y
    return d

def make_learn(df, loss=None, cbs=None, metrics=(), path='.'):
    dls = TabularDataLoaders.from_df(df.iloc[:1000], path=path, cont_names=[f'x{i}' for i in range(8)], y_names=LABELS,
                                     y_block=MultiCategoryBlock(encoded=True, vocab=LABELS), bs=64, valid_idx=list(range(750, 1000)))
    torch.manual_seed(0)
    return tabular_learner(dls, layers=[], loss_func=loss or MultiLabelBCELoss(), metrics=list(metrics), cbs=cbs)


@pytest.mark.parametrize('per_label,average', [(False, 'micro'), (False, 'macro'), (True, 'micro')])
def test_search_in_fit_matches_its_thresholds(df, per_label, average):
    learn = make_learn(df, cbs=ThresholdSearch(beta=2., per_label=per_label, average=average))
    learn.fit(2, 1e-2)
    ts, rec = learn.threshold_search, record(learn)
    probs, targs, dec = learn.get_preds(with_decoded=True)
    th = ts.label_thresh if per_label else ts.thresh
    assert torch.equal(dec, probs > th)
    t, p = targs.numpy(), (probs > th).numpy()
    from sklearn.metrics import fbeta_score
    exp = fbeta_score(t, p, beta=2., average='macro' if per_label else average, zero_division=0)
    assert rec[ts.columns[0].name] == pytest.approx(exp) and ts.score == pytest.approx(exp)
    assert len(ts.history) == 2 and [h['epoch'] for h in ts.history] == [0, 1]

def test_binned_search_gives_rare_labels_the_global_threshold(df):
    "min_pos with n_bins: labels with fewer validation positives take the global (micro) grid threshold, as the exact search does."
    from fastai_multilabel.thresholds import best_thresholds_binned
    from fastai_multilabel.streaming import ThresholdHistogram
    learn = make_learn(df, cbs=ThresholdSearch(per_label=True, n_bins=1024, min_pos=20))
    learn.fit(1, 1e-2)
    probs, targs = learn.get_preds()
    few = targs.sum(0) < 20
    assert few.tolist() == [False, False, False, True]   # 'rare'
    h = ThresholdHistogram(1024, sigmoid=False); h.update(probs, targs)
    g, _ = best_thresholds_binned(h.compute(), per_label=False)
    th = learn.loss_func.thresh
    assert th[3] == g and torch.equal(th, best_thresholds_binned(h.compute(), min_pos=20)[0].float())

def test_tuned_metric_uses_the_thresholds_found_before_the_epoch(df):
    learn = make_learn(df, cbs=ThresholdSearch(), metrics=[ThresholdAccuracy('tuned'), ThresholdAccuracy(0.3)])
    learn.loss_func.thresh = 0.3
    learn.fit(1, 1e-2)
    rec = record(learn)
    assert rec['accuracy_tuned'] == pytest.approx(rec['accuracy_t0p3'])   # epoch 0: the threshold set before the search
    th = learn.threshold_search.thresh
    assert learn.loss_func.thresh == th != 0.3
    learn.metrics = [ThresholdAccuracy('tuned'), ThresholdAccuracy(th)]
    learn.fit(1, 1e-2)
    rec = record(learn)
    assert rec['accuracy_tuned'] == pytest.approx(rec[f'accuracy_{thresh_tag(th)}'])  # next epoch: the threshold the search found

def test_search_only_inside_fit(df):
    learn = make_learn(df, cbs=ThresholdSearch(per_label=True))
    learn.fit(1, 1e-2)
    before = learn.loss_func.thresh.clone()
    learn.get_preds(dl=learn.dls.test_dl(df.iloc[1000:], with_labels=True))
    learn.validate()
    assert torch.equal(learn.loss_func.thresh, before) and len(learn.threshold_search.history) == 1

def test_export_round_trip_keeps_rules(df, tmp_path):
    learn = make_learn(df, cbs=ThresholdSearch(per_label=True), path=tmp_path)
    learn.fit(1, 1e-2)
    th = learn.loss_func.thresh.clone()
    learn.export('m.pkl')
    learn2 = load_learner(tmp_path/'m.pkl')
    assert torch.equal(learn2.loss_func.thresh, th)
    for i in range(1000, 1010):
        _, dec, probs = learn2.predict(df.iloc[i])
        assert torch.equal(dec, probs > th)

@pytest.mark.parametrize('loss,rule', [(MultiLabelBCELoss(k=2), lambda p: topk_mask(p, 2)),
                                       (MultiLabelBCELoss(thresh=.9, at_least_one=True), lambda p: (p > .9) | (topk_mask(p, 1) & ~(p > .9).any(1, keepdim=True)))])
def test_decoding_rules_through_get_preds(df, loss, rule):
    learn = make_learn(df, loss=loss)
    learn.fit(1, 1e-2)
    probs, _, dec = learn.get_preds(with_decoded=True)
    assert torch.equal(dec, rule(probs))
    if loss.k: assert (dec.sum(1) == 2).all()
    else: assert (dec.sum(1) >= 1).all()

def test_tune_thresholds_table_and_errors(df):
    learn = make_learn(df)
    learn.fit(1, 1e-2)
    dl = learn.dls.test_dl(df.iloc[1000:], with_labels=True)
    table = learn.tune_thresholds(dl, beta=1.)
    probs, targs = learn.get_preds(dl=dl)
    assert list(table.index) == LABELS and list(table.columns) == ['thresh', 'f1', 'support']
    assert np.allclose(table['f1'], f1_score(targs, probs > torch.tensor(table['thresh'].values), average=None, zero_division=0))
    assert torch.equal(learn.loss_func.thresh, torch.tensor(table['thresh'].values).float())
    g = learn.tune_thresholds(dl, per_label=False)
    assert isinstance(learn.loss_func.thresh, float) and g['thresh'].nunique() == 1
    with pytest.raises(ValueError, match="Expected `dl` to yield at least one"):
        learn.tune_thresholds(learn.dls.test_dl(df.iloc[:0], with_labels=True))
    with pytest.raises(ValueError, match="`beta` > 0"): learn.tune_thresholds(dl, beta=0)

def test_wrong_length_threshold_vector(df):
    learn = make_learn(df)
    learn.loss_func.thresh = torch.tensor([.5, .5])
    with pytest.raises(ValueError, match=r"one value per label \(4\), but got 2"): learn.get_preds(with_decoded=True)

def test_label_report_against_sklearn(df):
    learn = make_learn(df, cbs=ThresholdSearch(per_label=True))
    learn.fit(1, 1e-2)
    rep = label_report(learn)
    probs, targs = learn.get_preds()
    pm = (probs > learn.loss_func.thresh).numpy()
    p, r, f, s = precision_recall_fscore_support(targs.numpy(), pm, zero_division=0)
    assert list(rep.index) == LABELS + ['micro', 'macro', 'weighted']
    assert np.allclose(rep.loc[LABELS, ['precision', 'recall', 'f1']].values.T, [p, r, f]) and (rep.loc[LABELS, 'support'] == s).all()
    for avg in ('micro', 'macro', 'weighted'):
        assert rep.loc[avg, 'f1'] == pytest.approx(precision_recall_fscore_support(targs.numpy(), pm, average=avg, zero_division=0)[2])
    assert np.allclose(rep.loc[LABELS, 'best_f1'], rep.loc[LABELS, 'f1'])  # thresholds tuned on this same set

def test_plots_write_png(tmp_path):
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(200, 3, generator=g); targs = (torch.rand(200, 3, generator=g) < probs).float()
    fig = plot_threshold_curves(probs, targs, ['a', 'b', 'c'], thresh=.5, fname=tmp_path/'t.png')
    plot_pr_curves(probs, targs, ['a', 'b', 'c'], thresh=torch.tensor([.2, .5, .7]), fname=tmp_path/'p.png')
    assert len(fig.axes) == 3 and [a.get_title() for a in fig.axes] == sorted(['a', 'b', 'c'], key=lambda l: -targs[:, 'abc'.index(l)].sum().item())
    assert (tmp_path/'t.png').read_bytes()[:4] == b'\x89PNG' and (tmp_path/'p.png').stat().st_size > 10_000
