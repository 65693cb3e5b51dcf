"Half precision: float16 and bfloat16 scores give exactly the values of float32 scores holding the same numbers."
import pytest, torch
from torch import nn
from types import SimpleNamespace
from fastai_multilabel.all import *
from helpers import feed, feed_all, make_learn, record

HALF = [torch.float16, torch.bfloat16]

def data(dtype, n=300, n_labels=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, n_labels, generator=g) * 3).to(dtype)
    targs = (torch.rand(n, n_labels, generator=g) < 0.3).float()
    return logits, targs

def mets(): return [*default_metrics(list('abcdefg')), FScore(average='samples', thresh=0.3), ThresholdAccuracy(0.7), TopKAccuracy(2),
                    RecallAtK(3), SubsetAccuracy(torch.linspace(.1, .9, 7))]

@pytest.mark.parametrize('dtype', HALF, ids=str)
def test_metrics_equal_float32(dtype):
    logits, targs = data(dtype)
    assert feed_all(mets(), logits, targs, 64) == feed_all(mets(), logits.float(), targs, 64)
    assert [m(logits, targs) for m in mets()] == [m(logits.float(), targs) for m in mets()]

def test_confident_float16_model_is_not_a_false_nan():
    "512 x 1000 logits around +8: their float16 sum overflows 65,504; the metrics sum in float32."
    logits = torch.full((512, 1000), 8., dtype=torch.float16) + torch.rand(512, 1000).half()
    targs = torch.ones(512, 1000)
    assert feed(FScore(), logits, targs, 128) == 1.0
    assert feed(FScore(), logits, targs, 128) == feed(FScore(), logits.float(), targs, 128)

@pytest.mark.parametrize('dtype', HALF, ids=str)
@pytest.mark.parametrize('n_bins', [None, 1024, 100])
def test_threshold_search_equals_float32(dtype, n_bins):
    logits, targs = data(dtype, n=500)
    res = []
    for x in (logits, logits.float()):
        cb = ThresholdSearch(per_label=True, n_bins=n_bins)
        cb.learn = SimpleNamespace(training=False, loss_func=MultiLabelBCELoss(), epoch=0, yb=(), pred=None)
        cb.active = True; cb.before_validate()
        for i in range(0, 500, 64):
            cb.learn.pred, cb.learn.yb = x[i:i+64], (targs[i:i+64],)
            cb.after_batch()
        cb.after_validate()
        res.append((cb.label_thresh, cb.label_scores))
    assert torch.equal(res[0][0], res[1][0]) and torch.equal(res[0][1], res[1][1])

@pytest.mark.parametrize('dtype', HALF, ids=str)
def test_search_report_decoding_equal_float32(dtype):
    logits, targs = data(dtype)
    for per_label in (True, False):
        a, b = best_thresholds(logits, targs, sigmoid=True, per_label=per_label), best_thresholds(logits.float(), targs, sigmoid=True, per_label=per_label)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    probs16 = logits.float().sigmoid().to(dtype)  # half probabilities, as a half model's own sigmoid gives
    r16, r32 = report_from_preds(probs16, targs, 0.3), report_from_preds(probs16.float(), targs, 0.3)
    assert r16.equals(r32)
    for loss in (MultiLabelBCELoss(thresh=0.3), MultiLabelBCELoss(thresh=torch.linspace(.1, .9, 7)), MultiLabelBCELoss(k=2),
                 MultiLabelBCELoss(thresh=0.9, at_least_one=True)):
        assert torch.equal(loss.decodes(probs16), loss.decodes(probs16.float()))
        assert torch.equal(loss.activation(logits), torch.sigmoid(logits.float()))

class HalfHead(nn.Module):
    "A linear model whose outputs are half precision, as `model.half()` or a user's own autocast gives."
    def __init__(self, dtype): super().__init__(); self.lin, self.dtype = nn.Linear(10, 5), dtype
    def forward(self, x): return self.lin(x).to(self.dtype)

@pytest.mark.parametrize('dtype', HALF, ids=str)
def test_learner_with_a_half_precision_model(dtype):
    ms = [*default_metrics(list('abcde')), TopKAccuracy(2)]
    learn = make_learn(ms, loss_func=MultiLabelBCELoss(), cbs=ThresholdSearch(per_label=True))
    learn.model = HalfHead(dtype)
    learn.fit(1, 0.1)
    rec = record(learn)
    logits, targs = learn.get_preds(act=lambda x: x)
    assert logits.dtype == dtype
    assert [rec[m.name] for m in ms] == pytest.approx([m(logits.float(), targs) for m in ms], abs=0)
    th, sc = best_thresholds(logits.float(), targs, sigmoid=True)
    assert torch.equal(learn.loss_func.thresh, th.float()) and rec['tuned_f1_perlabel'] == pytest.approx(sc.mean().item())
