"The shared, buffered pass: one computation per distinct need, exact whatever the chunk, errors at the batch, no leaks."
import dataclasses, math, pickle, pytest, torch
import numpy as np
from types import SimpleNamespace
from sklearn.metrics import f1_score, fbeta_score, recall_score, precision_score
import fastai_multilabel.metrics as M
from fastai_multilabel.all import *
from helpers import feed, feed_all, rand_data, make_learn, record, run_procs

VOCAB = ['cat', 'dog', 'bird', 'fish', 'rare']

def test_recommended_set_shares_one_count_and_one_topk():
    ms = [*default_metrics(VOCAB), TopKAccuracy(2), FScore(beta=2), PrecisionAtK(2), SubsetAccuracy(0.3)]
    learn = make_learn(ms)
    learn.fit(1, 0.1)
    p = ms[0]._pass
    assert all(m._pass is p for m in ms) and len(p.members) == len(ms)
    assert len(p.stats.threshs) == 2 and p.stats.counts == [0] and p.stats._ks == [2]  # 0.5 counted once; 0.3 only for subset
    rec, (probs, targs) = record(learn), learn.get_preds()
    t = targs.numpy()
    assert rec['f1_macro_t0p5'] == pytest.approx(f1_score(t, probs > .5, average='macro', zero_division=0))
    assert rec['f2_macro_t0p5'] == pytest.approx(fbeta_score(t, probs > .5, beta=2, average='macro', zero_division=0))
    assert rec['subset_accuracy_t0p3'] == pytest.approx(((probs > .3) == targs.bool()).all(1).double().mean().item())
    for i, l in enumerate(VOCAB): assert rec[f'f1_{l}_t0p5'] == pytest.approx(f1_score(t[:, i], probs[:, i] > .5, zero_division=0))

@pytest.mark.parametrize('sigmoid', [True, False])
def test_default_metrics_k_is_top_k_accuracy_in_the_same_pass(sigmoid):
    "`default_metrics(k=2)`: the set and `TopKAccuracy(2)` in one pass, whatever `sigmoid`; the top 2 by hand."
    ms = default_metrics(VOCAB, sigmoid=sigmoid, k=2)
    assert [m.name for m in ms][:4] == ['f1_macro_t0p5', 'f1_micro_t0p5', 'accuracy_t0p5', 'top2_accuracy']
    assert len(shared_passes(ms)) == 1 and shared_passes(ms)[0]['sigmoid'] is sigmoid
    preds, targs = rand_data(n=150, n_labels=len(VOCAB))
    x = preds if sigmoid else preds.sigmoid()
    got = dict(zip([m.name for m in ms], feed_all(ms, x, targs, bs=32)))
    top = preds.argsort(dim=1, descending=True, stable=True)[:, :2]  # continuous scores: no ties
    hit = torch.zeros_like(targs).scatter_(1, top, 1.)
    assert got['top2_accuracy'] == pytest.approx((hit == targs).float().mean().item())
    with pytest.raises(ValueError, match="Expected `k` >= 1, but got 0"): default_metrics(k=0)

@pytest.mark.parametrize('chunk', [1, 100, 1000, 2**18])
def test_any_chunk_gives_the_same_values(monkeypatch, chunk):
    monkeypatch.setattr(M, 'CHUNK', chunk)
    preds, targs = rand_data(n=301)
    ms = [FScore(average='macro'), FScore(average='samples'), ThresholdAccuracy(0.3), TopKAccuracy(2), RecallAtK(3), *PerLabelRecall(list('abcdef'))]
    got = feed_all(ms, preds, targs, bs=32)
    probs, t = preds.sigmoid(), targs.numpy()
    exp = [f1_score(t, probs > .5, average='macro', zero_division=0), f1_score(t, probs > .5, average='samples', zero_division=0),
           ((probs > .3) == targs.bool()).double().mean().item(), multilabel_topk_accuracy(probs, targs, 2).item(),
           multilabel_recall_at_k(probs, targs, 3).item(), *recall_score(t, probs > .5, average=None, zero_division=0)]
    assert got == pytest.approx(exp)

def test_memory_is_bounded_by_the_chunk(monkeypatch):
    monkeypatch.setattr(M, 'CHUNK', 1000)
    m = FScore(); m.reset()
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        m.accumulate(SimpleNamespace(pred=torch.randn(16, 6, generator=g), yb=((torch.rand(16, 6, generator=g) < .3).float(),)))
        assert m._pass._n < 1000 + 16 * 6  # kept scores never exceed a chunk and a batch
    state = sum(t.numel() for t in m._pass.stats.metric_state.values())
    assert m._pass.stats.n.item() + m._pass._n // 6 == 3200 and state < 50   # O(labels), whatever the number of samples

def test_shape_errors_raise_at_the_batch_that_caused_them():
    preds, targs = rand_data(n=100)
    m = FScore(); m.reset()
    b = lambda p, t: SimpleNamespace(pred=p, yb=(t,))
    m.accumulate(b(preds[:10], targs[:10]))
    with pytest.raises(ValueError, match=r"Expected `targs` to have the shape of `preds` \(10, 6\), but got \(10, 5\)"):
        m.accumulate(b(preds[10:20], targs[10:20, :5]))
    with pytest.raises(ValueError, match=r"Expected every batch of `preds` to have the 6 labels of the first, but got shape \(10, 5\)"):
        m.accumulate(b(preds[10:20, :5], targs[10:20, :5]))

def test_training_batches_are_kept_without_their_graph():
    m = FScore(); m.reset()
    w = torch.ones(6, requires_grad=True)
    preds, targs = rand_data(n=20)
    m.accumulate(SimpleNamespace(pred=preds * w, yb=(targs,)))
    assert not m._pass._buf[0][0].requires_grad
    assert m.value == pytest.approx(f1_score(targs.numpy(), preds.sigmoid() > .5, average='macro', zero_division=0))

def test_two_learners_never_share_state():
    ms_a, ms_b = [*default_metrics(), TopKAccuracy(2)], [*default_metrics(), TopKAccuracy(2)]
    la, lb = make_learn(ms_a), make_learn(ms_b, n=500)
    shared = FScore(average='micro', name='shared')
    la.metrics = [*ms_a, shared]; lb.metrics = [*ms_b, shared]
    for learn in (la, lb, la):
        learn.fit(1, 0.1)
        rec, (probs, targs) = record(learn), learn.get_preds()
        assert rec['f1_macro_t0p5'] == pytest.approx(f1_score(targs, probs > .5, average='macro', zero_division=0))
        assert rec['shared'] == pytest.approx(f1_score(targs, probs > .5, average='micro', zero_division=0))
        assert rec['top2_accuracy'] == pytest.approx(multilabel_topk_accuracy(probs, targs, 2).item())

def test_pickled_mid_epoch_without_the_pass():
    preds, targs = rand_data(n=64)
    ms = [*default_metrics(['a', 'b', 'c', 'd', 'e', 'f']), TopKAccuracy(2)]
    for m in ms: m.reset()
    b = SimpleNamespace(pred=preds[:32], yb=(targs[:32],), metrics=ms)
    for m in ms: m.accumulate(b)
    ms2 = pickle.loads(pickle.dumps(ms))
    assert all(m._pass is None and 'accumulate' not in m.__dict__ for m in ms2)
    assert feed_all(ms2, preds, targs, 16) == pytest.approx(feed_all(ms, preds, targs, 16))

def test_tuned_thresholds_changing_between_batches():
    "Batches kept before `loss_func.thresh` changes are counted at the thresholds they were seen with."
    preds, targs = rand_data(n=64)
    lf = SimpleNamespace(thresh=0.5)
    m = ThresholdAccuracy('tuned'); m.reset()
    m.accumulate(SimpleNamespace(pred=preds[:32], yb=(targs[:32],), loss_func=lf))
    lf.thresh = torch.tensor([.2, .3, .4, .5, .6, .7])
    m.accumulate(SimpleNamespace(pred=preds[32:], yb=(targs[32:],), loss_func=lf))
    probs, t = preds.sigmoid(), targs.bool()
    exp = torch.cat([(probs[:32] > .5) == t[:32], (probs[32:] > lf.thresh) == t[32:]]).double().mean().item()
    assert m.value == pytest.approx(exp)

def test_metric_called_on_tensors():
    preds, targs = rand_data(n=101)
    probs, t = preds.sigmoid(), targs.numpy()
    for avg in AVERAGES:
        assert FScore(average=avg)(preds, targs) == pytest.approx(f1_score(t, probs > .5, average=avg, zero_division=0))
    assert PerLabelPrecision(list('abcdef'))[2](preds, targs) == pytest.approx(precision_score(t, probs > .5, average=None, zero_division=0)[2])
    m = FScore(); m.reset(); feed(m, preds[:50], targs[:50])
    before = m.value
    FScore()(preds, targs); m(preds, targs)
    assert m.value == before                                    # the running state is left alone
    with pytest.warns(UserWarning, match=r"`preds` all lie in \[0, 1\]"): FScore()(probs, targs)
    with pytest.raises(ValueError, match="thresh='tuned' reads it from a learner"): FScore(thresh='tuned')(preds, targs)

def test_epoch_values_on_one_thread_and_the_setting_restored(monkeypatch):
    "The histogram values run on one thread; the chunk updates and the exact (kept-scores) values on the caller's threads."
    from sklearn.metrics import average_precision_score
    seen, n0 = [], torch.get_num_threads()
    upd, cmp = MultilabelStats.update, MultilabelStats.compute
    monkeypatch.setattr(MultilabelStats, 'update', lambda self, *a: (seen.append(('update', torch.get_num_threads())), upd(self, *a))[1])
    monkeypatch.setattr(MultilabelStats, 'compute', lambda self: (seen.append(('compute', self.keep, torch.get_num_threads())), cmp(self))[1])
    g = torch.Generator().manual_seed(0)
    preds, targs = torch.randn(300, 4, generator=g), (torch.rand(300, 4, generator=g) < .4).float()
    torch.set_num_threads(2)
    try:
        binned, exact = AveragePrecision()(preds, targs), AveragePrecision(n_bins=None)(preds, targs)
        assert torch.get_num_threads() == 2
    finally: torch.set_num_threads(n0)
    from fastai_multilabel.streaming import _OPENMP  # other thread pools: left alone
    assert seen == [('update', 2), ('compute', False, 1 if _OPENMP else 2), ('update', 2), ('compute', True, 2)]
    want = average_precision_score(targs.numpy(), preds.numpy(), average='macro')
    assert abs(exact - want) < 1e-12 and abs(binned - multilabel_average_precision(preds, targs, sigmoid=True, n_bins=1024).item()) < 1e-12

def test_needs_are_frozen_hashable_picklable_values():
    from fastai_multilabel.metrics import Counts, TopKCounts, Histogram, KeptScores, SampleScores, RankScores
    needs = [Counts(0.5), Counts((0.2, 0.3)), Counts('tuned'), TopKCounts(2), Histogram(1024), KeptScores(), RankScores('lrap'),
             SampleScores('exact_match', thresh=0.3), SampleScores('fbeta', k=2, beta=2., zero_division=math.nan)]
    again = pickle.loads(pickle.dumps(needs))        # as all_gather_object hands them to the other processes
    assert again == needs and {hash(n) for n in again} == {hash(n) for n in needs} and len(set(needs + again)) == len(needs)
    assert Counts(torch.tensor([0.2, 0.3])) == Counts((0.2, 0.3))   # a tensor threshold is made a tuple key, equal to its values
    assert SampleScores('fbeta', thresh=0.5) != SampleScores('fbeta', thresh=0.5, beta=2.) != SampleScores('fbeta', k=1, beta=2.)
    with pytest.raises(dataclasses.FrozenInstanceError): needs[0].thresh = 0.3
    with pytest.raises(ValueError, match=r"Expected either `thresh` or `k` to give the predicted set, but got thresh=0.5, k=2"):
        SampleScores('recall', thresh=0.5, k=2)
    with pytest.raises(ValueError, match=r"Expected `kind` to be one of \('lrap', 'coverage_error', 'ranking_loss'\), but got 'auc'"):
        RankScores('auc')
    with pytest.raises(TypeError, match=r"Expected `needs` of Counts, .*, but got \('counts', 0.5\)"):
        M.MultilabelMetric([('counts', 0.5)], id, 'x')

def test_metrics_declare_their_needs():
    from fastai_multilabel.metrics import Counts, TopKCounts, Histogram, KeptScores, SampleScores, RankScores
    assert FScore(thresh=0.3)._needs == ThresholdAccuracy(0.3)._needs == (Counts(0.3),)
    assert FScore(average='samples', zero_division=math.nan)._needs == FScore(average='samples', zero_division=math.nan)._needs \
           == (SampleScores('fbeta', thresh=0.5, zero_division=math.nan),)   # NaN settings share one statistic
    assert SubsetAccuracy(0.3)._needs == (SampleScores('exact_match', thresh=0.3),)
    assert TopKAccuracy(2)._needs == (SampleScores('hamming', k=2),) and RecallAtK(3, zero_division=1.)._needs == (SampleScores('recall', k=3, zero_division=1.),)
    assert AveragePrecision()._needs == (Histogram(1024),) and RocAuc(n_bins=None)._needs == (KeptScores(),)
    assert CoverageError()._needs == (RankScores('coverage_error'),)
    assert {n for m in paper_metrics(k=2) for n in m._needs} == {Histogram(1024), Counts(0.5), TopKCounts(2)}

def test_nan_zero_division_is_shared_and_agreed_across_processes():
    "A NaN `zero_division` made two needs unequal (NaN != NaN): unshared in one process, a `ValueError` at the DDP agreement."
    ms = [FScore(average='samples', zero_division=math.nan), FScore(average='samples', zero_division=math.nan, name='again')]
    preds, targs = rand_data(n=301)
    feed_all(ms, preds, targs, bs=64)
    assert len(ms[0]._pass.stats.scores) == 1
    res, exp = run_procs(_nan_worker), _nan_values(preds, targs)
    assert res[0] == pytest.approx(exp) and res[1] == pytest.approx(exp)

def _nan_metrics(): return [FScore(average='samples', zero_division=math.nan), RecallAtK(2, zero_division=math.nan), FScore()]

def _nan_values(preds, targs):
    probs, t = preds.sigmoid(), targs.numpy()
    pm = (probs > .5).numpy()
    keep = (pm | t.astype(bool)).any(1)                            # a sample with neither predicted nor true labels is 0/0: left out
    rec2 = torch.tensor([float('nan') if r.sum() == 0 else (r * (torch.zeros_like(r).scatter(0, p.topk(2).indices, 1.))).sum() / r.sum()
                         for p, r in zip(probs, targs)])
    return [f1_score(t[keep], pm[keep], average='samples', zero_division=0), rec2.nanmean().item(),
            f1_score(t, pm, average='macro', zero_division=0)]

def _nan_worker(rank):
    preds, targs = rand_data(n=301)
    part = slice(0, 120) if rank == 0 else slice(120, 301)
    return feed_all(_nan_metrics(), preds[part], targs[part], bs=32)

def test_shared_passes_tells_which_metrics_share_what():
    "`shared_passes` groups as `_Pass.start` does: checked against the passes a fit builds."
    from fastai.metrics import accuracy_multi   # not a MultilabelMetric: left out
    labels = ['cat', 'dog', 'bird', 'fish', 'loss']
    ms = [*default_metrics(labels), TopKAccuracy(2), FScore(average='samples', zero_division=1.), AveragePrecision(n_bins=None),
          FScore(thresh=0.3, sigmoid=False, name='f1_probs'), RecallAtK(3),
          ThresholdAccuracy(torch.tensor([.2, .3, .4, .5, .6]), ignore_index=-1), accuracy_multi]
    want = [dict(sigmoid=True, ignore_index=None, needs={
                'per-label counts at prob > 0.5': ['f1_macro_t0p5', 'f1_micro_t0p5', 'accuracy_t0p5', 'f1_cat_t0p5', 'f1_dog_t0p5',
                                                   'f1_bird_t0p5', 'f1_fish_t0p5', 'f1_loss_t0p5'],
                'mean over samples of hamming of the top 2': ['top2_accuracy'],
                'mean over samples of f1 (0/0 = 1) at prob > 0.5': ['f1_samples_t0p5_zd1'],
                'every score and target, kept': ['map_macro_exact'],
                'mean over samples of recall of the top 3': ['recall_at3']}),
            dict(sigmoid=False, ignore_index=None, needs={'per-label counts at prob > 0.3': ['f1_probs']}),
            dict(sigmoid=True, ignore_index=-1, needs={'per-label counts at per-label thresholds tvec-895fb6': ['accuracy_tvec-895fb6']})]
    assert shared_passes(ms) == want
    ms = [m for m in ms if getattr(m, 'name', '') != 'f1_probs']; del want[1]   # sigmoid=False raises on this learner's logits
    learn = make_learn(ms)
    assert shared_passes(learn) == want
    learn.fit(1, 0.1)
    passes = list(dict.fromkeys(m._pass for m in ms if isinstance(m, M.MultilabelMetric)))
    assert [[m.name for m in p.members] for p in passes] == [[n for nd in w['needs'].values() for n in nd] for w in want]
    assert [[str(n) for n in p.needs] for p in passes] == [list(w['needs']) for w in want]
    assert shared_passes([]) == [] and shared_passes(FScore()) == [dict(sigmoid=True, ignore_index=None, needs={'per-label counts at prob > 0.5': ['f1_macro_t0p5']})]
    with pytest.raises(TypeError, match="Expected `metrics` to be a list of metrics or a Learner, but got int"): shared_passes(3)
