"""Two gloo processes of which one sees no batch (uneven shards: iterable datasets, samplers without padding, `Join`): every
stream, the shared fastai pass and `ThresholdSearch` give on both processes the value of one process over all samples,
never a hang or an abort (`run_procs` kills the processes and fails on a timeout, a traceback or an exit without result)."""
import math, warnings
import numpy as np, pytest, torch
from functools import partial
from sklearn.metrics import f1_score, average_precision_score
from fastai_multilabel.all import *
from fastai_multilabel.functional import set_scores_from_counts, topk_scores
from helpers import feed_all, rand_data, run_procs

N, L = 150, 6

def _data():
    preds, targs = rand_data(n=N, n_labels=L, seed=1)
    return preds, targs

def _shard(rank, empty, preds, targs):
    "This rank's share: everything on the rank that is not `empty`, nothing on the other."
    return (preds[:0], targs[:0]) if rank == empty else (preds, targs)

def _streams(n_labels=None, keep=True):
    "One of each stream class; MultilabelStats with every kind of state (counts, top-k counts, histograms, kept scores, scores, unknown entries)."
    kw = {} if n_labels is None else dict(n_labels=n_labels)
    return dict(
        counts=LabelCounts(0.4, **kw),
        average=SampleAverage(partial(topk_scores, k=2, criteria='overlap'), **kw),
        hist=ThresholdHistogram(64, **kw),
        stats=MultilabelStats([0.5, 0.3], scores=[(('t', 1), partial(set_scores_from_counts, criteria='exact_match')),
                                                  (('k', 2), partial(set_scores_from_counts, criteria='hamming'))],
                              topk_counts=[2], hists=[64], keep=keep, **kw),
        unknown=MultilabelStats([0.5], topk_counts=[3], hists=[32], keep=keep, ignore_index=-1, **kw))

def _plain(x):
    "Results as plain Python data (tensors would travel as shared memory, gone with the process)."
    if isinstance(x, torch.Tensor): return x.tolist()
    if isinstance(x, dict): return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)): return [_plain(v) for v in x]
    return x

def _feed_streams(streams, preds, targs, bs=32):
    for i in range(0, len(preds), bs):
        for nm, s in streams.items():
            t = targs[i:i+bs]
            if nm == 'unknown': t = t.masked_fill(preds[i:i+bs] > 2, -1)  # some entries unknown
            s.update(preds[i:i+bs], t)

def _stream_worker(rank, empty, n_labels):
    warnings.filterwarnings('ignore', message='.*was called before the ``update`` method')
    preds, targs = _shard(rank, empty, *_data())
    streams = _streams(n_labels)
    _feed_streams(streams, preds, targs)
    return {nm: _plain(s.compute()) for nm, s in streams.items()}

@pytest.mark.parametrize('empty', [1, 0], ids=['rank1_empty', 'rank0_empty'])
@pytest.mark.parametrize('n_labels', [None, L], ids=['shapes_agreed', 'n_labels'])
def test_streams_with_an_empty_process(empty, n_labels):
    res = run_procs(_stream_worker, empty, n_labels)
    ref = _streams()
    _feed_streams(ref, *_data())
    exp = {nm: _plain(s.compute()) for nm, s in ref.items()}
    preds, targs = _data()
    # the reference itself is right: counts and the kept scores by hand
    tp, fp, fn, tn = torch.tensor(exp['counts'])
    assert score_from_counts('fbeta', tp, fp, fn, average='macro').item() == pytest.approx(
        f1_score(targs.numpy(), (preds.sigmoid() > .4).numpy(), average='macro', zero_division=0))
    assert torch.equal(torch.tensor(exp['stats']['kept'][0]), preds.sigmoid())
    for r in res: np.testing.assert_equal(r, exp)  # every state on both ranks, exactly

def _no_data_worker(rank, n_labels):
    warnings.filterwarnings('ignore', message='.*was called before the ``update`` method')
    out = {}
    for nm, s in _streams(n_labels).items():
        try: out[nm] = _plain(s.compute())
        except ValueError as e: out[nm] = f'ValueError: {e}'
    return out

def test_no_batch_on_any_process():
    "Without `n_labels` there is no shape to report: a clear error on every process (no hang); with it, zero counts."
    r0, r1 = run_procs(_no_data_worker, None)
    np.testing.assert_equal(r0, r1)  # NaN equal to NaN
    assert math.isnan(r0['average'])  # 0/0 samples, as in one process
    for nm in ('counts', 'hist', 'stats', 'unknown'):
        assert 'saw no batch on any process' in r0[nm] and 'n_labels=' in r0[nm], r0[nm]
    z0, z1 = run_procs(_no_data_worker, L)
    np.testing.assert_equal(z0, z1)
    assert z0['counts'] == [[0]*L, [0]*L, [0]*L, [0]*L]
    assert z0['hist'] == torch.zeros(L, 65, 2, dtype=torch.long).tolist()
    assert z0['stats']['counts'][0] == [[0]*L]*4 and z0['stats']['kept'] == [[], []]

def _mismatch_worker(rank):
    s = LabelCounts()
    if rank == 0: s.update(torch.randn(4, 3), torch.ones(4, 3))
    else: s.update(torch.randn(4, 5), torch.ones(4, 5))
    try: s.compute()
    except ValueError as e: return str(e)

def test_processes_with_other_label_counts():
    r0, r1 = run_procs(_mismatch_worker)
    assert r0 == r1 and 'same number of labels on every process, but got [3, 5]' in r0

# the shared fastai pass: reset/accumulate/value as in a plain loop, rank 1 never accumulates

def _metrics():
    labels = list('abcdef')
    return [*default_metrics(labels), TopKAccuracy(2), FScore(average='samples'), RecallAtK(3), AveragePrecision(n_bins=None),
            RocAuc(average='micro'), LabelRankingAveragePrecision(), RankingLoss(), *paper_metrics(k=2),
            FScore(sigmoid=False, name='f1_probs'),  # a second pass (other `sigmoid`), read between the first pass's columns
            ThresholdAccuracy(0.3, ignore_index=-1), ThresholdAccuracy(0.5)]

def _feed(metrics, preds, targs):
    "Probabilities for the `sigmoid=False` column: fastai passes one `pred`, so that column is fed on its own."
    vals = feed_all([m for m in metrics if m.sigmoid], preds, targs, bs=32)
    probs_metric = [m for m in metrics if not m.sigmoid]
    pv = feed_all(probs_metric, preds.sigmoid(), targs, bs=32)
    it, pit = iter(vals), iter(pv)
    return [next(it) if m.sigmoid else next(pit) for m in metrics]

def _pass_worker(rank, empty, epochs):
    preds, targs = _shard(rank, empty, *_data())
    ms = _metrics()
    out = []
    for e in range(epochs):  # several epochs: a pass of the last one is not reused
        k = len(preds) if e == 0 else len(preds) // 2
        out.append(_feed(ms, preds[:k], targs[:k]))
    return out

@pytest.mark.parametrize('empty', [1, 0], ids=['rank1_empty', 'rank0_empty'])
def test_fastai_pass_with_an_empty_process(empty):
    res = run_procs(_pass_worker, empty, 2)
    preds, targs = _data()
    ms = _metrics()
    exp = [_feed(ms, preds, targs), _feed(ms, preds[:N//2], targs[:N//2])]
    names = [m.name for m in ms]
    v = dict(zip(names, exp[0]))
    assert v['f1_macro_t0p5'] == pytest.approx(f1_score(targs.numpy(), (preds.sigmoid() > .5).numpy(), average='macro', zero_division=0))
    assert v['map_macro_exact'] == pytest.approx(average_precision_score(targs[:, :-1].numpy(), preds[:, :-1].sigmoid().numpy()))
    for r in res:
        for e in range(2): assert r[e] == pytest.approx(exp[e], nan_ok=True), list(zip(names, r[e], exp[e]))

def _pass_no_data_worker(rank):
    ms = _metrics()
    for m in ms: m.reset()
    return [m.value for m in ms]

def test_fastai_pass_no_batch_anywhere():
    "Every process quietly NaN, as in one process without a labelled batch."
    for r in run_procs(_pass_no_data_worker): assert all(math.isnan(v) for v in r)

# ThresholdSearch: a Learner whose validation set is empty on one process. Not through fastai's distributed path: its
# DistributedDL pads every share to the same batches, and it gathers each batch's loss, which uneven shares would hang.
# Here only our callback and metrics sync (as in a loop joined by `torch.distributed` alone).

def _search_learn(rank, empty, n_bins):
    from fastai.basics import DataLoaders, DataLoader, Learner, nn
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g)
    y = (x @ torch.randn(8, 4, generator=g) + torch.randn(300, 4, generator=g) > 1.).float()
    ds = list(zip(x, y))
    valid = [] if rank == empty else ds[200:]
    dls = DataLoaders(DataLoader(ds[:200], bs=50, shuffle=False), DataLoader(valid, bs=32), device='cpu')
    torch.manual_seed(0)
    return Learner(dls, nn.Linear(8, 4), loss_func=MultiLabelBCELoss(), metrics=[*default_metrics(), FScore(thresh='tuned')],
                   cbs=ThresholdSearch(per_label=True, n_bins=n_bins)), x[200:], y[200:]

def _search_worker(rank, empty, n_bins):
    import warnings; warnings.filterwarnings('ignore')
    learn, xv, yv = _search_learn(rank, empty, n_bins)
    learn.fit(1, 0.)  # lr 0: the model stays as initialized, the same on both processes
    probs = torch.sigmoid(learn.model(xv)).detach()
    vals = {m.name: m.value for m in learn.metrics if hasattr(m, 'sigmoid')}
    return dict(thresh=learn.loss_func.thresh.tolist(), probs=probs.tolist(), targs=yv.tolist(), vals=vals)

@pytest.mark.parametrize('n_bins', [None, 1024], ids=['exact', 'binned'])
def test_threshold_search_with_an_empty_process(n_bins):
    r0, r1 = run_procs(_search_worker, 1, n_bins)
    probs, targs = torch.tensor(r0['probs']), torch.tensor(r0['targs'])
    if n_bins is None: exp = best_thresholds(probs, targs)[0]
    else:
        h = ThresholdHistogram(n_bins, sigmoid=False); h.update(probs, targs); exp = best_thresholds_binned(h.compute())[0]
    assert r0['thresh'] == r1['thresh'] == exp.float().tolist()
    assert r0['vals'] == pytest.approx(r1['vals'])
    assert r0['vals']['f1_macro_t0p5'] == pytest.approx(f1_score(targs.numpy(), (probs > .5).numpy(), average='macro', zero_division=0))
