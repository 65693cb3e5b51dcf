"Shared test helpers (as fastai's test_utils): feeding metrics without a Learner, small data, learners, brute-force searches."
import os, queue, socket, time, traceback
from datetime import timedelta
from types import SimpleNamespace
import torch
from fastai_multilabel.all import *
from fastai_multilabel.thresholds import scores_at

def feed(metric, preds, targs, bs=None, loss_func=None):
    "Run `metric` through fastai's protocol (reset, accumulate per batch, value) and return its value."
    metric.reset()
    bs = bs or len(preds)
    for i in range(0, len(preds), bs):
        metric.accumulate(SimpleNamespace(pred=preds[i:i+bs], yb=(targs[i:i+bs],), loss_func=loss_func))
    return metric.value

def feed_all(metrics, preds, targs, bs=None, loss_func=None):
    "Run `metrics` as one learner's Recorder does (reset all, then every metric on each batch); return their values."
    for m in metrics: m.reset()
    bs = bs or len(preds)
    for i in range(0, len(preds), bs):
        b = SimpleNamespace(pred=preds[i:i+bs], yb=(targs[i:i+bs],), loss_func=loss_func, metrics=metrics)
        for m in metrics: m.accumulate(b)
    return [m.value for m in metrics]

def rand_data(n=200, n_labels=6, p=0.3, seed=0, empty_label=True):
    "Logits and 0/1 float targets; the last label has no positives when `empty_label`."
    g = torch.Generator().manual_seed(seed)
    preds = torch.randn(n, n_labels, generator=g) * 2
    targs = (torch.rand(n, n_labels, generator=g) < p).float()
    if empty_label: targs[:, -1] = 0
    return preds, targs

def record(learn):
    "The last epoch's metric values of `learn` by name."
    return dict(zip(learn.recorder.metric_names[1:-1], learn.recorder.values[-1]))

def make_learn(metrics, n=700, n_labels=5, bs=64, **kw):
    "A linear multi-label learner on synthetic data; 175 validation samples, so the last batch is uneven."
    from fastai.basics import DataLoaders, Learner, BCEWithLogitsLossFlat, nn
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 10, generator=g)
    y = (x @ torch.randn(10, n_labels, generator=g) + torch.randn(n, n_labels, generator=g) > 1.2).float()
    ds = list(zip(x, y)); cut = n * 3 // 4
    dls = DataLoaders.from_dsets(ds[:cut], ds[cut:], bs=bs, device='cpu')
    torch.manual_seed(0)
    return Learner(dls, nn.Linear(10, n_labels), loss_func=kw.pop('loss_func', None) or BCEWithLogitsLossFlat(), metrics=metrics, **kw)

def brute_best(probs, targs, beta=1., metric='fbeta', per_label=True, average='micro'):
    "Best score over thresholds at 0, 1, every distinct score and every midpoint, the slow way."
    u = probs.unique()
    cands = torch.cat([torch.tensor([0., 1.], dtype=probs.dtype), u, (u[1:] + u[:-1]) / 2])
    if per_label: return torch.stack([scores_at(probs, targs, c, beta, metric, 0.) for c in cands]).max(0).values
    if average == 'macro': return torch.stack([scores_at(probs, targs, c, beta, metric, 0.).mean() for c in cands]).max()
    return torch.stack([scores_at(probs.reshape(-1, 1), targs.reshape(-1, 1), c, beta, metric, 0.)[0] for c in cands]).max()

def free_port():
    "A free TCP port on the loopback interface."
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _proc_main(target, rank, world, port, q, args, init):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    # fastai's distributed path (`distrib_ctx`) reads these; with them, fastai also gathers every batch's loss itself
    if not init: os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    import torch.distributed as dist
    try:
        if init: dist.init_process_group('gloo', rank=rank, world_size=world, timeout=timedelta(seconds=60))
        q.put((rank, True, target(rank, *args)))
    except BaseException:
        q.put((rank, False, traceback.format_exc()))
    finally:
        if init and dist.is_initialized(): dist.destroy_process_group()

def run_procs(target, *args, world=2, timeout=180, init=True):
    """`target(rank, *args)` in `world` spawned processes (joined by a gloo process group if `init`), its results in rank order.
    Raises with the traceback of a failing rank, the exit code of a process that died without one (an abort), or after
    `timeout` seconds (a hang); every process still alive is killed before this returns or raises."""
    import torch.multiprocessing as mp
    ctx = mp.get_context('spawn'); q = ctx.Queue(); port = free_port()
    procs = [ctx.Process(target=_proc_main, args=(target, r, world, port, q, args, init)) for r in range(world)]
    for p in procs: p.start()
    res, deadline = {}, time.monotonic() + timeout
    try:
        while len(res) < world:
            try: rank, ok, v = q.get(timeout=1)
            except queue.Empty:
                dead = {r: p.exitcode for r, p in enumerate(procs) if r not in res and p.exitcode is not None}
                if dead: raise AssertionError(f'processes {dead} (rank: exit code) ended without a result')
                if time.monotonic() > deadline: raise AssertionError(f'no result from ranks {sorted(set(range(world)) - set(res))} after {timeout} s: a hang')
                continue
            if not ok: raise AssertionError(f'rank {rank} failed:\n{v}')
            res[rank] = v
    finally:
        for p in procs:
            p.join(10 if len(res) == world else 0.1)
            if p.is_alive(): p.kill(); p.join(5)
    return [res[r] for r in range(world)]
