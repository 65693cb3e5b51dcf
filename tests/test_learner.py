"End to end: metrics inside fastai's Learner.fit equal scikit-learn on get_preds; names; export."
import pickle, re, warnings, pytest, torch
from fastai.basics import DataLoaders, Learner, BCEWithLogitsLossFlat, Recorder, load_learner, nn
from sklearn.metrics import f1_score, recall_score
from fastai_multilabel.all import *
from fastai_multilabel.names import thresh_tag
from fastai_multilabel.functional import topk_scores
from helpers import make_learn, record

def test_fit_matches_sklearn_on_get_preds():
    vocab = ['cat', 'dog', 'bird', 'fish', 'role::program']
    thresh = torch.tensor([.3, .4, .5, .6, .7])
    learn = make_learn([*default_metrics(), FScore(2, 0.3, 'weighted'), FScore(thresh=thresh, average='samples'),
                        ThresholdAccuracy(0.2), SubsetAccuracy(), TopKAccuracy(2), *PerLabelRecall(vocab)])
    learn.fit(2, 0.1)
    rec = record(learn)
    preds, targs = learn.get_preds()
    t = targs.numpy()
    assert rec['f1_macro_t0p5'] == pytest.approx(f1_score(t, preds > .5, average='macro', zero_division=0))
    assert rec['f1_micro_t0p5'] == pytest.approx(f1_score(t, preds > .5, average='micro', zero_division=0))
    assert rec['accuracy_t0p5'] == pytest.approx(((preds > .5) == targs.bool()).float().mean().item())
    from sklearn.metrics import fbeta_score
    assert rec['f2_weighted_t0p3'] == pytest.approx(fbeta_score(t, preds > .3, beta=2, average='weighted', zero_division=0))
    assert rec[f'f1_samples_{thresh_tag(thresh)}'] == pytest.approx(f1_score(t, preds > thresh, average='samples', zero_division=0))
    assert rec['accuracy_t0p2'] == pytest.approx(((preds > .2) == targs.bool()).float().mean().item())
    assert rec['subset_accuracy_t0p5'] == pytest.approx(((preds > .5) == targs.bool()).all(1).float().mean().item())
    recalls = recall_score(t, preds > .5, average=None, zero_division=0)
    for i, l in enumerate(['cat', 'dog', 'bird', 'fish', 'role_program']): assert rec[f'recall_{l}_t0p5'] == pytest.approx(recalls[i])

def test_training_metrics_match_a_manual_pass():
    "With lr=0 the model is fixed, so the training-batch values equal the metrics over all training predictions."
    learn = make_learn([TopKAccuracy(2), FScore()], n=683, cbs=Recorder(train_metrics=True))  # 512 train samples: no batch dropped
    learn.fit(1, 0.)
    names, vals = learn.recorder.metric_names, learn.recorder.values[-1]
    assert names[1:4] == ['train_loss', 'train_top2_accuracy', 'train_f1_macro_t0p5']
    probs, targs = learn.get_preds(ds_idx=0)
    t = targs.bool()
    assert vals[1] == pytest.approx(topk_scores(probs, t, 2).mean().item())
    assert vals[2] == pytest.approx(f1_score(targs, probs > .5, average='macro', zero_division=0))

def test_names_unique_and_charset():
    labels = ['cat', 'C++', 'role::program', 'a b', 'a_b', '']
    ms = [*default_metrics(labels), *default_metrics(labels, 0.3), *default_metrics(labels, torch.linspace(.1, .9, 6)),
          *default_metrics(labels, 'tuned'), *[FScore(b, t, a) for b in (.5, 1, 2) for t in (.25, .75) for a in AVERAGES],
          *[TopKAccuracy(k, c) for k in (1, 2, 3) for c in CRITERIA], PrecisionAtK(2), RecallAtK(2),
          SubsetAccuracy(), SubsetAccuracy(0.3), *PerLabelPrecision(labels), *PerLabelRecall(labels), *PerLabelFScore(labels, 2)]
    names = check_metric_names(ms)
    assert len(set(names)) == len(names) and all(re.fullmatch(r'[A-Za-z0-9_.\-]+', n) for n in names)
    assert FScore(name='headline').name == 'headline'

def test_tracker_name_warning():
    with pytest.warns(UserWarning, match="lower-is-better"): PerLabelRecall(['error', 'ok'])

def test_tuned_thresholds_follow_loss_func():
    learn = make_learn([ThresholdAccuracy('tuned'), ThresholdAccuracy(0.3)])
    learn.loss_func.thresh = 0.3
    learn.fit(1, 0.1)
    rec = record(learn)
    assert rec['accuracy_tuned'] == pytest.approx(rec['accuracy_t0p3'])

def test_metrics_pickle_as_export_does():
    "`learn.export` pickles the learner with its metrics: they must pickle and still work after."
    ms = [*default_metrics(['a', 'b', 'c', 'd', 'e']), TopKAccuracy(2), FScore(thresh='tuned', average='samples'), RecallAtK(2)]
    learn = make_learn(ms)
    learn.fit(1, 0.1)
    exp = record(learn)
    ms2 = pickle.loads(pickle.dumps(learn.metrics))
    learn.metrics = ms2
    learn.validate()
    assert [m.name for m in ms2] == [m.name for m in ms]
    assert [m.value for m in ms2] == pytest.approx([exp[m.name] for m in ms])
