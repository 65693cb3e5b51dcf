"""Real 2-process training through fastai's distributed path (`learn.distrib_ctx(cpu=True)`, gloo): metrics, the
threshold search (exact and binned), tune_thresholds and label_report give the single-process values on every rank."""
import pytest, torch
from helpers import run_procs

N_VALID = {'uneven': 175, 'one': 1}   # 175: divides by neither 2 processes nor the batch size; 1: rank 1 sees only padding

def _cpu_broadcast(self, t, rank):
    "fastai 2.8's DistributedDL._broadcast calls .cuda(): the same broadcast on the CPU (test only)."
    t = torch.tensor(t, dtype=torch.long); torch.distributed.broadcast(t, rank); return t.tolist()

def _learn(n_valid, n_bins):
    import warnings; warnings.filterwarnings('ignore')
    from fastai.basics import DataLoaders, Learner, nn
    from fastai_multilabel.all import (default_metrics, TopKAccuracy, FScore, RecallAtK, MultiLabelBCELoss, ThresholdSearch, AveragePrecision,
                                       RocAuc, LabelRankingAveragePrecision, RankingLoss, paper_metrics)
    g = torch.Generator().manual_seed(0)
    n = 512 + n_valid
    x = torch.randn(n, 10, generator=g)
    y = (x @ torch.randn(10, 5, generator=g) + torch.randn(n, 5, generator=g) > 1.2).float()
    ds = list(zip(x, y))
    dls = DataLoaders.from_dsets(ds[:512], ds[512:], bs=64, device='cpu', num_workers=0)
    torch.manual_seed(0)
    ms = [*default_metrics(list('abcde')), TopKAccuracy(2), FScore(average='samples'), RecallAtK(3), FScore(thresh='tuned', average='micro'),
          # ranking metrics: a histogram, every score (a 'cat' state), per-sample rankings, top-k counts
          *paper_metrics(k=2), AveragePrecision(n_bins=None), RocAuc(average='micro'), LabelRankingAveragePrecision(), RankingLoss()]
    return Learner(dls, nn.Linear(10, 5), loss_func=MultiLabelBCELoss(), metrics=ms, cbs=ThresholdSearch(per_label=True, n_bins=n_bins))

def _values(learn):
    "Our metrics' values after the last epoch or `validate` (read from the metrics: `validate` does not record them)."
    from fastai_multilabel.metrics import MultilabelMetric
    return {m.name: m.value for m in learn.metrics if isinstance(m, MultilabelMetric)}

def _worker(rank, n_valid, n_bins):
    import fastai.distributed as fd
    from fastai_multilabel.all import label_report
    fd.DistributedDL._broadcast = _cpu_broadcast
    learn = _learn(n_valid, n_bins)
    with learn.distrib_ctx(cpu=True):
        learn.fit(2, 0.1)
        fit_vals, fit_thresh = _values(learn), learn.loss_func.thresh.clone()
        learn.validate()
        ddp_vals = _values(learn)
        probs, targs = learn.get_preds()              # fastai gathers the predictions of both processes, without repeats
        table = learn.tune_thresholds(apply=False)
        report = label_report(learn)
    learn.validate()                                  # the same model in one process: the reference
    one_vals = _values(learn)
    # plain arrays: tensors would travel as shared memory, gone once this process ends
    return dict(fit_vals=fit_vals, fit_thresh=fit_thresh.numpy(), ddp_vals=ddp_vals, one_vals=one_vals, table=table, report=report,
                probs=probs.numpy(), targs=targs.numpy())

@pytest.mark.parametrize('n_valid', N_VALID.values(), ids=N_VALID.keys())
@pytest.mark.parametrize('n_bins', [None, 1024], ids=['exact', 'binned'])
def test_two_process_training_equals_one_process(n_valid, n_bins):
    from sklearn.metrics import f1_score
    from fastai_multilabel.all import best_thresholds, best_thresholds_binned, multilabel_topk_accuracy
    res = run_procs(_worker, n_valid, n_bins, init=False, timeout=300)
    for r in res: r.update({k: torch.from_numpy(r[k]) for k in ('fit_thresh', 'probs', 'targs')})
    r0, r1 = res[0], res[1]
    assert len(r0['probs']) == n_valid
    for r in (r0, r1):
        # the metrics of a DDP validation equal one process's over the same samples, on every rank (padding counted once)
        for k, v in r['one_vals'].items():
            assert r['ddp_vals'][k] == pytest.approx(v, abs=1e-12, nan_ok=True), k
        assert r['ddp_vals']['f1_macro_t0p5'] == pytest.approx(f1_score(r['targs'], r['probs'] > .5, average='macro', zero_division=0))
        assert r['ddp_vals']['top2_accuracy'] == pytest.approx(multilabel_topk_accuracy(r['probs'], r['targs'], 2).item())
        if n_valid > 1:
            from sklearn.metrics import average_precision_score, label_ranking_average_precision_score
            assert r['ddp_vals']['map_macro_exact'] == pytest.approx(average_precision_score(r['targs'], r['probs']), abs=1e-6)
            assert r['ddp_vals']['lrap'] == pytest.approx(label_ranking_average_precision_score(r['targs'], r['probs']), abs=1e-6)
        # every rank ends with the thresholds one process finds on all validation predictions of the final model
        if n_bins is None: exp = best_thresholds(r['probs'], r['targs'])[0]
        else:
            from fastai_multilabel.all import ThresholdHistogram
            h = ThresholdHistogram(n_bins, sigmoid=False); h.update(r['probs'], r['targs']); exp = best_thresholds_binned(h.compute())[0]
        assert torch.equal(r['fit_thresh'], exp.float())
        assert r['table'].thresh.tolist() == best_thresholds(r['probs'], r['targs'])[0].tolist()
    assert torch.equal(r0['fit_thresh'], r1['fit_thresh']) and r0['fit_vals'] == pytest.approx(r1['fit_vals'], nan_ok=True)
    assert r0['report'].equals(r1['report'])
