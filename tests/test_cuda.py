"On CUDA (skipped without a GPU): no host/device synchronization per batch, and the values of the CPU."
from types import SimpleNamespace
import pytest, torch
from fastai_multilabel.all import *
from helpers import feed_all, rand_data

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')

def _metrics(): return [*default_metrics(list('abcdefgh')), TopKAccuracy(2), FScore(average='samples'), RecallAtK(3),
                        SubsetAccuracy(torch.linspace(.2, .8, 8)), ThresholdAccuracy('tuned')]

def test_metrics_no_sync_per_batch_and_cpu_values():
    preds, targs = rand_data(n=3000, n_labels=8)
    lf = SimpleNamespace(thresh=torch.full((8,), .4))
    ms = _metrics()
    for m in ms: m.reset()
    p, t = preds.cuda(), targs.cuda()
    for i in range(0, 3000, 64):
        b = SimpleNamespace(pred=p[i:i+64], yb=(t[i:i+64],), metrics=ms, loss_func=lf)
        for m in ms: m.accumulate(b)
        if i == 0: torch.cuda.synchronize(); torch.cuda.set_sync_debug_mode('error')  # the first batch moves the state there, once
    torch.cuda.set_sync_debug_mode('default')
    got = [m.value for m in ms]
    assert got == pytest.approx(feed_all(_metrics(), preds, targs, 64, loss_func=lf))

@pytest.mark.parametrize('n_bins', [None, 1024, 200])
def test_threshold_search_no_sync_per_batch(n_bins):
    preds, targs = rand_data(n=2000, n_labels=8)
    res = {}
    for dev in ('cpu', 'cuda'):
        cb = ThresholdSearch(per_label=True, n_bins=n_bins)
        cb.learn = SimpleNamespace(training=False, loss_func=MultiLabelBCELoss(), epoch=0, yb=(), pred=None)
        cb.active = True; cb.before_validate()
        p, t = preds.to(dev), targs.to(dev)
        try:
            for i in range(0, 2000, 64):
                cb.learn.pred, cb.learn.yb = p[i:i+64], (t[i:i+64],)
                cb.after_batch()
                if dev == 'cuda' and i == 0: torch.cuda.synchronize(); torch.cuda.set_sync_debug_mode('error')  # after the one move
        finally: torch.cuda.set_sync_debug_mode('default')
        cb.after_validate()
        res[dev] = cb.label_thresh.cpu(), cb.score
    # CUDA's sigmoid may differ from the CPU's in the last bit, and a threshold is a midpoint of two probabilities
    torch.testing.assert_close(res['cpu'][0], res['cuda'][0], rtol=1e-6, atol=1e-7)
    assert res['cpu'][1] == pytest.approx(res['cuda'][1])

def test_report_decoding_and_export_after_cuda_training(tmp_path):
    "Train on CUDA, then report, decode and export; load the learner on the CPU: same thresholds, same decisions."
    import numpy as np, pandas as pd
    from fastai.tabular.all import TabularDataLoaders, MultiCategoryBlock, tabular_learner, load_learner
    rng, labels = np.random.default_rng(0), list('abcde')
    X = rng.normal(size=(1000, 8))
    df = pd.DataFrame(X, columns=[f'x{i}' for i in range(8)]); df[labels] = (X @ rng.normal(size=(8, 5)) > 1.).astype(float)
    dls = TabularDataLoaders.from_df(df, path=tmp_path, cont_names=[f'x{i}' for i in range(8)], y_names=labels, bs=64, device='cuda',
                                     y_block=MultiCategoryBlock(encoded=True, vocab=labels), valid_idx=list(range(750, 1000)))
    learn = tabular_learner(dls, layers=[], loss_func=MultiLabelBCELoss(), metrics=[*default_metrics(labels), TopKAccuracy(2)],
                            cbs=ThresholdSearch(per_label=True))
    learn.fit(1, 0.1)
    probs, targs, dec = learn.get_preds(with_decoded=True)
    assert torch.equal(dec.cpu(), probs.cpu() > learn.loss_func.thresh.cpu())
    rep = label_report(learn)
    assert rep.loc['macro', 'f1'] == pytest.approx(multilabel_fbeta_score(probs.cpu(), targs.cpu(), thresh=learn.loss_func.thresh).item())
    learn.export('m.pkl')
    cpu = load_learner(tmp_path/'m.pkl', cpu=True)
    assert torch.equal(cpu.loss_func.thresh.cpu(), learn.loss_func.thresh.cpu())
    assert torch.equal(cpu.loss_func.decodes(probs.cpu()), dec.cpu())

def test_streaming_threshold_moves_to_the_device_once():
    lc = LabelCounts(thresh=torch.linspace(.2, .8, 8))
    preds, targs = rand_data(n=64, n_labels=8)
    lc.to('cuda'); lc.update(preds.cuda(), targs.cuda())
    assert lc._cut.device.type == 'cuda'    # kept there: later batches do not copy it again
