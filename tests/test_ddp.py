"Two gloo processes, each with an uneven share of the data: the synced value equals the single-process one."
import os, socket, pytest, torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.metrics import f1_score
from fastai_multilabel.all import *
from helpers import feed, rand_data

def _free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _worker(rank, port, q):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    preds, targs = rand_data(n=301)
    part = slice(0, 120) if rank == 0 else slice(120, 301)  # uneven shares
    ms = [FScore(average='macro'), FScore(average='micro'), FScore(average='samples'), ThresholdAccuracy(0.3), TopKAccuracy(2)]
    q.put((rank, [feed(m, preds[part], targs[part], bs=32) for m in ms]))
    dist.destroy_process_group()

def test_two_process_sync():
    ctx = mp.get_context('spawn'); q = ctx.Queue(); port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, port, q)) for r in range(2)]
    for p in procs: p.start()
    res = dict(q.get(timeout=120) for _ in procs)
    for p in procs: p.join(60)
    preds, targs = rand_data(n=301)
    exp = [feed(m, preds, targs, bs=32) for m in [FScore(average='macro'), FScore(average='micro'), FScore(average='samples'),
                                                 ThresholdAccuracy(0.3), TopKAccuracy(2)]]
    assert exp[0] == pytest.approx(f1_score(targs.numpy(), (preds.sigmoid() > .5).numpy(), average='macro', zero_division=0))
    assert res[0] == pytest.approx(exp) and res[1] == pytest.approx(exp)
