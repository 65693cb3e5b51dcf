"One test per bug found while trying the metrics as a new user would (issue: one shared pass)."
import math, pytest, torch
import numpy as np
from sklearn.metrics import f1_score, precision_score, recall_score, fbeta_score
from fastai_multilabel.all import *
from fastai_multilabel.core import check_zero_division
from fastai_multilabel.functional import label_counts
from helpers import feed, feed_all, rand_data

def test_list_of_per_label_thresholds():
    preds, targs = rand_data(n=100, n_labels=3)
    m = FScore(thresh=[0.2, 0.3, 0.4])
    assert m.name.startswith('f1_macro_tvec-') and m.name == FScore(thresh=torch.tensor([0.2, 0.3, 0.4])).name
    exp = f1_score(targs.numpy(), preds.sigmoid() > torch.tensor([.2, .3, .4]), average='macro', zero_division=0)
    assert feed(m, preds, targs, 32) == pytest.approx(exp)
    assert PerLabelRecall(['a', 'b', 'c'], thresh=[0.2, 0.3, 0.4])[0].name.startswith('recall_a_tvec-')

def test_repeated_label_names_stay_unique():
    names = [m.name for m in PerLabelRecall(['a', 'a', 'a-2'])]
    assert len(set(names)) == 3 and names == ['recall_a_t0p5', 'recall_a-3_t0p5', 'recall_a-2_t0p5']

def test_label_counts_dtype_matches_its_docstring():
    c = label_counts(torch.ones(3, 2, dtype=torch.bool), torch.zeros(3, 2, dtype=torch.bool))
    assert c.dtype == torch.int32 and 'int32' in label_counts.__doc__ and c.tolist() == [[0, 0], [3, 3], [0, 0]]

@pytest.mark.parametrize('zd', [0., 1., float('nan')])
@pytest.mark.parametrize('kind,sk', [('fbeta', f1_score), ('precision', precision_score), ('recall', recall_score)])
def test_weighted_without_any_positive(zd, kind, sk):
    "No sample has a positive label: scikit-learn averages the per-label scores unweighted (0 where labels were predicted)."
    preds = torch.tensor([[3., -3, -3], [-3, -3, -3], [-3, 3, -3], [-3, -3, -3]])
    targs = torch.zeros(4, 3)
    for p in (preds, -torch.ones(4, 3)):
        exp = sk(targs.numpy(), (p.sigmoid() > .5).numpy(), average='weighted', zero_division=zd)
        got = multilabel_fbeta_score(p, targs, average='weighted', sigmoid=True, zero_division=zd) if kind == 'fbeta' else \
              (multilabel_precision if kind == 'precision' else multilabel_recall)(p, targs, average='weighted', sigmoid=True, zero_division=zd)
        assert (math.isnan(exp) and math.isnan(got)) or got == pytest.approx(exp)
    if kind == 'fbeta': assert feed(FScore(average='weighted', zero_division=zd), preds, targs) == pytest.approx(
        f1_score(targs.numpy(), (preds > 0).numpy(), average='weighted', zero_division=zd), nan_ok=True)

def test_samples_and_recall_at_k_leave_undefined_samples_out():
    preds, targs = rand_data(n=120, n_labels=5, p=0.15, seed=3)
    targs[::3] = 0                          # a third of the samples without any positive: 0/0 recall
    nan = float('nan')
    exp = f1_score(targs.numpy(), (preds.sigmoid() > .5).numpy(), average='samples', zero_division=nan)
    assert not math.isnan(exp)
    assert feed(FScore(average='samples', zero_division=nan), preds, targs, 25) == pytest.approx(exp)
    hits = (topk_mask(preds, 2) & targs.bool()).sum(1).double(); pos = targs.sum(1).double()
    assert feed(RecallAtK(2, zero_division=nan), preds, targs, 25) == pytest.approx((hits / pos)[pos > 0].mean().item())

def test_topk_ties_lowest_index_wins():
    preds = torch.tensor([[1., 5, 5, 5], [5, 5, 5, 1], [0, 0, 0, 0]])
    assert topk_mask(preds, 1).tolist() == [[False, True, False, False], [True, False, False, False], [True, False, False, False]]
    targs = torch.tensor([[0., 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    assert feed(PrecisionAtK(1), preds, targs) == pytest.approx(1/3)       # only sample 1 keeps a true label
    assert feed(TopKAccuracy(1, 'overlap'), preds, targs, 1) == pytest.approx(1/3)
    assert MultiLabelBCELoss(k=1).decodes(preds).tolist() == topk_mask(preds, 1).tolist()
    big = torch.zeros(5, 300); big[:, 7] = 1; t = torch.zeros(5, 300); t[:, 0] = 1   # torch.topk path (>= 256 labels)
    assert feed(TopKAccuracy(2, 'overlap'), big, t) == 1.0

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA: checks the CPU and CUDA tie rules agree')
def test_topk_ties_same_on_cuda():
    g = torch.Generator().manual_seed(0)
    preds = (torch.randn(500, 40, generator=g)).round()
    targs = (torch.rand(500, 40, generator=g) < .2).float()
    assert torch.equal(topk_mask(preds, 3), topk_mask(preds.cuda(), 3).cpu())
    assert feed(TopKAccuracy(3), preds, targs) == pytest.approx(feed(TopKAccuracy(3), preds.cuda(), targs.cuda()))

def test_zero_division_rejects_bool():
    with pytest.raises(ValueError, match="Expected `zero_division` to be 0, 1 or nan, but got True"): check_zero_division(True)
    with pytest.raises(ValueError, match="but got False"): FScore(zero_division=False)
