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
def test_empty_epoch_is_nan_with_warning(metric):
    metric.reset()
    with pytest.warns(UserWarning, match="saw no batch this epoch: its value is NaN"): v = metric.value
    assert math.isnan(v)

def test_tuned_without_loss_thresh():
    with pytest.raises(ValueError, match=r"thresh='tuned' reads `learn.loss_func.thresh`, which object does not have"):
        feed(FScore(thresh='tuned'), P, T, loss_func=object())
