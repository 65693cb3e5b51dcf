"Each bad input raises a ValueError/TypeError naming the argument, what was received and what was expected."
import math, warnings, pytest, torch
from fastai_multilabel.all import *
from helpers import feed, rand_data

P, T = rand_data(n=8, n_labels=5)

@pytest.mark.parametrize('metric', [FScore(), ThresholdAccuracy(), SubsetAccuracy(), TopKAccuracy(2), PrecisionAtK(2), RecallAtK(2)], ids=str)
def test_shape_mismatch(metric):
    with pytest.raises(ValueError, match=r"Expected `targs` to have the shape of `preds` \(8, 5\), but got \(8, 4\)"):
        feed(metric, P, T[:, :4])

@pytest.mark.parametrize('metric', [FScore(), TopKAccuracy(2)], ids=str)
def test_single_label_targets(metric):
    with pytest.raises(ValueError, match=r"multi-hot `targs` of shape \(N, n_labels\) like `preds` \(8, 5\), but got shape \(8,\)"):
        feed(metric, P, T[:, 0])

@pytest.mark.parametrize('bad', [2., 0.5, -1., float('nan')])
@pytest.mark.parametrize('metric', [FScore, ThresholdAccuracy, SubsetAccuracy, TopKAccuracy], ids=str)
def test_non_binary_targets(metric, bad):
    t = T.clone(); t[3, 2] = bad
    with pytest.raises(ValueError, match=r"`targs` to hold only 0 and 1 \(multi-hot\), but got other values"):
        feed(metric(), P, t, bs=3)

@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
@pytest.mark.parametrize('metric', [FScore, ThresholdAccuracy, TopKAccuracy, RecallAtK], ids=str)
def test_non_finite_preds(metric, bad):
    p = P.clone(); p[5, 1] = bad
    with pytest.raises(ValueError, match="Expected finite `preds`, but they contained NaN or infinite values"):
        feed(metric(), p, T, bs=3)

def test_k_out_of_range():
    with pytest.raises(ValueError, match="Expected `k` >= 1, but got 0"): TopKAccuracy(0)
    with pytest.raises(ValueError, match="Expected `k` >= 1, but got -1"): PrecisionAtK(-1)
    with pytest.raises(TypeError, match="Expected `k` to be an int, but got 2.0"): RecallAtK(2.)
    with pytest.raises(ValueError, match=r"`k` <= the number of labels \(5\), but got 6"): feed(TopKAccuracy(6), P, T)

@pytest.mark.parametrize('thresh', [-0.1, 1.01, float('nan')])
def test_thresh_out_of_range(thresh):
    with pytest.raises(ValueError, match=r"Expected `thresh` in \[0, 1\], but got"): FScore(thresh=thresh)
    with pytest.raises(ValueError, match=r"Expected `thresh` in \[0, 1\], but got"): ThresholdAccuracy(thresh)

def test_thresh_vector_bad():
    with pytest.raises(ValueError, match=r"every value of `thresh` in \[0, 1\]"): FScore(thresh=torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match=r"`thresh` to have one value per label \(5\), but got 3 values"):
        feed(FScore(thresh=torch.tensor([.2, .3, .4])), P, T)
    with pytest.raises(ValueError, match=r"`thresh` to have one value per label \(3\), but got 2 values"):
        PerLabelRecall(['a', 'b', 'c'], thresh=[.2, .3])
    with pytest.raises(ValueError, match="float, a per-label tensor or 'tuned', but got 'best'"): FScore(thresh='best')
    with pytest.raises(TypeError, match="Expected `thresh` to be a float"): FScore(thresh=None)

def test_labels_length():
    with pytest.raises(ValueError, match=r"Expected `labels` to name every output \(5\), but got 3 labels"):
        feed(PerLabelRecall(['a', 'b', 'c'])[0], P, T)
    with pytest.raises(TypeError, match="sequence of label names"): PerLabelRecall('abc')

def test_unknown_average_criteria_beta():
    with pytest.raises(ValueError, match=r"Expected `average` to be one of \('micro', 'macro', 'weighted', 'samples'\), but got 'binary'"):
        FScore(average='binary')
    with pytest.raises(ValueError, match=r"Expected `criteria` to be one of .* but got 'any'"): TopKAccuracy(2, 'any')
    with pytest.raises(ValueError, match="Expected `beta` > 0, but got 0"): FScore(beta=0)
    with pytest.raises(ValueError, match="Expected `zero_division` to be 0, 1 or nan, but got 0.5"): FScore(zero_division=0.5)

def test_preds_not_float_or_not_tensor():
    with pytest.raises(TypeError, match="float scores .* but got dtype torch.int64"): feed(FScore(), P.long(), T)
    with pytest.raises(TypeError, match="Expected `preds` to be a torch.Tensor, but got ndarray"): feed(FScore(), P.numpy(), T)

@pytest.mark.parametrize('metric', [FScore(), ThresholdAccuracy(), TopKAccuracy(2), PerLabelRecall(['a'])[0]], ids=str)
def test_empty_epoch_is_quietly_nan(metric):
    "No labelled batch (fastai's predict, get_preds on unlabelled data): NaN, and no warning per column, as fastai's metrics."
    metric.reset()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert math.isnan(metric.value)

def test_tuned_without_loss_thresh():
    with pytest.raises(ValueError, match=r"thresh='tuned' reads `learn.loss_func.thresh`, which object does not have"):
        feed(FScore(thresh='tuned'), P, T, loss_func=object())

def test_review_findings():
    "Bad input found by a new-user review: each raises naming the argument, at the batch or call that caused it."
    from types import SimpleNamespace
    from fastai_multilabel.functional import nan_average
    with pytest.raises(ValueError, match="or one value per label, but got an empty list"): FScore(thresh=[])
    with pytest.raises(ValueError, match="but got an empty Tensor"): FScore(thresh=torch.tensor([]))
    with pytest.raises(TypeError, match="Expected `k` to be an int, but got None"): TopKAccuracy(k=None)
    with pytest.raises(TypeError, match="Expected `sigmoid` to be True or False, but got 'yes'"): FScore(sigmoid='yes')
    with pytest.raises(ValueError, match=r"at least one sample, but got shape \(0, 5\)"): FScore()(P[:0], T[:0])
    with pytest.raises(ValueError, match=r"at least one label, but got shape \(8, 0\)"): FScore()(P[:, :0], T[:, :0])
    with pytest.raises(ValueError, match=r"`weights` of the shape of `scores` \(3,\), but got \(2,\)"):
        nan_average(torch.tensor([.1, .2, .3]), torch.tensor([1., 2.]))
    m = TopKAccuracy(6); m.reset()
    with pytest.raises(ValueError, match=r"`k` <= the number of labels \(5\), but got 6"):   # at the first batch
        m.accumulate(SimpleNamespace(pred=P, yb=(T,)))
    with pytest.raises(TypeError, match=r"to be unpacked into `metrics=`.*\*PerLabelRecall\(labels\)"): PerLabelRecall(['a'])(P, T)
    with pytest.raises(ValueError, match=r"Expected probabilities in \[0, 1\] in `preds` \(sigmoid=False\), but got values from"):
        feed(FScore(sigmoid=False), P * 3, T)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        TopKAccuracy(2)(P.sigmoid(), T)        # a top-k value does not depend on the sigmoid: no warning

def test_streaming_classes_check_the_number_of_labels():
    for s in (LabelCounts(), MultilabelStats(), ThresholdHistogram(8)):
        s.update(P, T)
        with pytest.raises(ValueError, match=r"the 5 labels of the first, but got shape \(8, 1\)"): s.update(P[:, :1], T[:, :1])

def test_names_state_zero_division_and_avoid_average_names():
    assert check_metric_names([FScore(), FScore(zero_division=1), FScore(zero_division=float('nan')), RecallAtK(2), RecallAtK(2, zero_division=1)]) == \
        ['f1_macro_t0p5', 'f1_macro_t0p5_zd1', 'f1_macro_t0p5_zdnan', 'recall_at2', 'recall_at2_zd1']
    names = check_metric_names(default_metrics(['macro', 'b']))
    assert 'f1_label-macro_t0p5' in names and len(set(names)) == len(names)

@pytest.mark.parametrize('bad', [0, -2, 2.5, True, '5'])
@pytest.mark.parametrize('stream', [LabelCounts, ThresholdHistogram, MultilabelStats], ids=str)
def test_bad_n_labels(stream, bad):
    with pytest.raises(ValueError, match=rf"Expected `n_labels` to be None or an int >= 1, but got {bad!r}"): stream(n_labels=bad)

@pytest.mark.parametrize('stream', [lambda: LabelCounts(n_labels=4), lambda: ThresholdHistogram(n_labels=4),
                                    lambda: MultilabelStats(n_labels=4), lambda: MultilabelStats(threshs=[torch.full((4,), .5)], n_labels=4)])
def test_batch_with_other_labels_than_n_labels(stream):
    with pytest.raises(ValueError, match=r"Expected every batch of `preds` to have the 4 labels of the first, but got shape \(8, 5\)"):
        stream().update(P, T)

def test_n_labels_checks_its_arguments():
    with pytest.raises(ValueError, match=r"one value per label \(4\), but got 5"): LabelCounts(torch.full((5,), .5), n_labels=4)
    with pytest.raises(ValueError, match=r"`k` <= the number of labels \(4\), but got 5"): MultilabelStats(topk_counts=[5], n_labels=4)

@pytest.mark.parametrize('stream', [LabelCounts, ThresholdHistogram, MultilabelStats], ids=str)
def test_compute_without_a_batch(stream):
    "No batch and no `n_labels`: no shape to give the values, said plainly (torchmetrics' own message is a warning and an IndexError)."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(ValueError, match=rf"{stream.__name__} saw no batch on any process, so it has no number of labels: .* `n_labels=`"):
            stream().compute()
