"MultiLabelInterpretation against scikit-learn and brute force, on trained learners (list-backed and DataFrame-backed)."
import numpy as np, pandas as pd, pytest, torch
import torch.nn.functional as F
from fastcore.basics import noop
from fastai.callback.progress import ProgressCallback  # registers the progress bar (as fastai.tabular.all does) and `Learner.no_bar`
from sklearn.metrics import multilabel_confusion_matrix, precision_recall_fscore_support
from matplotlib.figure import Figure
from helpers import make_learn
from fastai_multilabel.all import MultiLabelBCELoss
from fastai_multilabel.interpret import MultiLabelInterpretation

@pytest.fixture(scope='module')
def learn():
    learn = make_learn([])
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-2)
    return learn

@pytest.fixture(scope='module')
def interp(learn):
    with learn.no_bar(): return learn.interpret_multilabel()

@pytest.fixture(scope='module')
def raw(learn):
    "Logits and targets of the validation set, by fastai."
    with learn.no_bar(): return learn.get_preds(act=noop)

def bce(logits, targs):
    "Per-label binary cross-entropy by hand."
    return -(targs * F.logsigmoid(logits) + (1 - targs) * F.logsigmoid(-logits))

def check_confusion(cm, logits, targs, thresh):
    pred = (torch.sigmoid(logits) > thresh).numpy()
    np.testing.assert_array_equal(cm[['tn', 'fp', 'fn', 'tp']].values, multilabel_confusion_matrix(targs.numpy(), pred).reshape(-1, 4))
    p,r,f,s = precision_recall_fscore_support(targs.numpy(), pred, average=None, zero_division=0)
    np.testing.assert_allclose(cm.precision.values, p); np.testing.assert_allclose(cm.recall.values, r)
    np.testing.assert_allclose(cm.f1.values, f)
    np.testing.assert_array_equal(cm.support.values, s); np.testing.assert_array_equal(cm.predicted.values, pred.sum(0))

def test_confusion_vs_sklearn(learn, raw, interp):
    logits,targs = raw
    assert len(interp.probs) == 175 and interp.labels == [f'label{i}' for i in range(5)] and interp.thresh == 0.5
    assert interp.confusion().index.name == 'label'
    check_confusion(interp.confusion(), logits, targs, 0.5)
    th = torch.tensor([.2, .35, .5, .65, .8])
    check_confusion(interp.confusion(th), logits, targs, th)
    check_confusion(interp.confusion([.3]*5), logits, targs, .3)
    with learn.no_bar(): interp = learn.interpret_multilabel(thresh=th)
    check_confusion(interp.confusion(), logits, targs, th)

def test_label_without_positives(learn):
    "A validation set where label 2 has no positives: support 0, recall 0 (0/0), still scikit-learn's counts."
    ds = [(x, y * torch.tensor([1., 1., 0., 1., 1.])) for x,y in learn.dls.valid.dataset]
    dl = learn.dls.valid.new(ds)
    with learn.no_bar(): interp = learn.interpret_multilabel(dl=dl)
    with learn.no_bar(): logits,targs = learn.get_preds(dl=dl, act=noop)
    assert targs[:, 2].sum() == 0
    cm = interp.confusion()
    check_confusion(cm, logits, targs, 0.5)
    assert cm.support.iloc[2] == 0 and cm.recall.iloc[2] == 0 and cm.tp.iloc[2] == 0
    assert interp.top_losses('label2', kind='fn').empty
    assert isinstance(interp.plot_top_losses('label2', kind='fn'), Figure)

def test_thresholds_from_the_loss(raw):
    th = torch.tensor([.3, .4, .5, .6, .7])
    learn = make_learn([], loss_func=MultiLabelBCELoss(thresh=th))
    with learn.no_bar(): interp = learn.interpret_multilabel()
    assert torch.equal(interp.thresh, th)
    with learn.no_bar(): logits,targs = learn.get_preds(act=noop)
    check_confusion(interp.confusion(), logits, targs, th)
    learn = make_learn([], loss_func=torch.nn.BCEWithLogitsLoss())  # no `thresh`: 0.5
    with learn.no_bar(): assert learn.interpret_multilabel().thresh == 0.5

def test_losses(learn, raw, interp):
    logits,targs = raw
    torch.testing.assert_close(interp.losses, bce(logits, targs))
    with learn.no_bar(): valid_loss = learn.validate()[0]
    assert abs(interp.losses.mean().item() - valid_loss) < 1e-5

def test_top_losses(learn, raw, interp):
    logits,targs = raw
    losses,probs,pred = bce(logits, targs),torch.sigmoid(logits),torch.sigmoid(logits) > 0.5
    names = lambda row: [f'label{j}' for j in range(5) if row[j]]
    tl = interp.top_losses(k=7)
    assert list(tl.columns) == ['idx', 'item', 'name', 'true', 'predicted', 'prob', 'loss']
    exp = sorted(range(175), key=lambda i: -losses[i].mean().item())[:7]
    assert tl.idx.tolist() == exp
    np.testing.assert_allclose(tl.loss.values, losses[exp].mean(1).numpy(), rtol=1e-5)
    assert tl.true.tolist() == [names(targs[i]) for i in exp] and tl.predicted.tolist() == [names(pred[i]) for i in exp]
    assert tl.prob.isna().all()
    for i,x in zip(tl.idx, tl.item): assert torch.equal(x, learn.dls.valid.dataset[i][0])  # list of tuples: the input
    tl = interp.top_losses('label3', k=5)
    exp = sorted(range(175), key=lambda i: -losses[i, 3].item())[:5]
    assert tl.idx.tolist() == exp
    np.testing.assert_allclose(tl.loss.values, losses[exp, 3].numpy(), rtol=1e-5)
    np.testing.assert_allclose(tl.prob.values.astype(float), probs[exp, 3].numpy(), rtol=1e-6)

@pytest.mark.parametrize('kind', ['fp', 'fn'])
@pytest.mark.parametrize('c', range(5))
def test_top_losses_errors_of_a_label(raw, interp, kind, c):
    logits,targs = raw
    losses,pred = bce(logits, targs)[:, c],torch.sigmoid(logits[:, c]) > 0.5
    errs = [i for i in range(175) if ((pred[i] and not targs[i, c]) if kind == 'fp' else (targs[i, c] and not pred[i]))]
    tl = interp.top_losses(f'label{c}', kind=kind, k=4)
    lab = f'label{c}'
    for t,p in zip(tl.true, tl.predicted): assert (lab in p and lab not in t) if kind == 'fp' else (lab in t and lab not in p)
    assert tl.loss.is_monotonic_decreasing
    exp = sorted(errs, key=lambda i: -losses[i].item())[:4]
    assert tl.idx.tolist() == exp and len(tl) == min(4, len(errs))
    assert set(tl.idx) <= set(errs)

@pytest.fixture(scope='module')
def tab():
    "A small DataFrame-backed learner with three labels."
    from fastai.tabular.all import TabularDataLoaders, MultiCategoryBlock, tabular_learner, Categorify, Normalize
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({'a': rng.normal(size=n), 'b': rng.normal(size=n), 'c': rng.choice(['x', 'y', 'z'], n)},
                      index=[f'r{i}' for i in range(n)])
    labs = ['red', 'green', 'blue']
    for i,l in enumerate(labs): df[l] = ((df.a * (i-1) + df.b + rng.normal(size=n)) > 0.5).astype(float)
    df['title'] = [f'Post  {i}\n' + ('longer ' * 15 if i == 250 else 'short') for i in range(n)]  # not a model input
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=['c'], cont_names=['a', 'b'], y_names=labs,
                                     y_block=MultiCategoryBlock(encoded=True, vocab=labs), valid_idx=list(range(200, 300)), bs=32)
    torch.manual_seed(0)
    learn = tabular_learner(dls, layers=[], n_out=3)
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 3e-2)
    return learn,df,labs

def test_items_of_a_dataframe(tab):
    learn,df,labs = tab
    with learn.no_bar(): interp = learn.interpret_multilabel()
    assert interp.labels == labs
    tl = interp.top_losses(k=10)
    assert tl.item.tolist() == [f'r{200+i}' for i in tl.idx]
    for item,true in zip(tl.item, tl.true): assert true == [l for l in labs if df.loc[item, l] == 1]
    tl = interp.top_losses('green', kind='fp', k=3)
    assert all(df.loc[it, 'green'] == 0 for it in tl.item)

def short(i):
    "The name of row `i` of `tab`'s DataFrame, written by hand."
    return 'Post 250 ' + 'longer '*7 + 'l…' if i == 250 else f'Post {i} short'

def test_name_col(tab):
    learn,df,labs = tab
    with learn.no_bar(): interp = learn.interpret_multilabel()
    tl = interp.top_losses(k=100, name_col='title')
    assert list(tl.columns) == ['idx', 'item', 'name', 'true', 'predicted', 'prob', 'loss']
    assert sorted(tl.idx) == list(range(100)) and tl.item.tolist() == [f'r{200+i}' for i in tl.idx]
    assert tl.name.tolist() == [short(200 + i) for i in tl.idx]
    assert [' '.join(df.title.iloc[200 + i].split()) for i in tl.idx if i != 50] == [n for i,n in zip(tl.idx, tl.name) if i != 50]
    long = tl.name[tl.idx == 50].item()
    assert len(long) == 60 and long.endswith('longer l…') and long.startswith('Post 250 longer')
    tl = interp.top_losses('green', k=3, name_col='title')
    assert tl.name.tolist() == [short(200 + i) for i in tl.idx] and len(tl) > 0
    assert interp.top_losses(k=10).name.isna().all()  # `TabularPandas` has no input getter
    with pytest.raises(ValueError, match=r"Expected `name_col` to be a column of the dataset's DataFrame \('a', 'b', 'c', 'red', 'green', 'blue', 'title'\), but got 'author'"):
        interp.top_losses(name_col='author')
    fig = interp.plot_top_losses(k=4, name_col='title')
    cells = fig.axes[0].tables[0].get_celld()
    assert [cells[0, j].get_text().get_text() for j in range(7)] == ['idx', 'item', 'name', 'true', 'predicted', 'prob', 'loss']
    assert [cells[r, 2].get_text().get_text() for r in range(1, 5)] == [short(200 + i) for i in interp.top_losses(k=4).idx]

def test_name_from_the_getter(tab):
    "A DataBlock whose `get_x` reads the title: the title names the sample, without `name_col`."
    from fastai.data.all import DataBlock, TransformBlock, MultiCategoryBlock, ColReader, IndexSplitter
    _,df,labs = tab
    dls = DataBlock(blocks=(TransformBlock, MultiCategoryBlock(encoded=True, vocab=labs)), get_x=ColReader('title'), get_y=ColReader(labs),
                    splitter=IndexSplitter(list(range(200, 300)))).dataloaders(df, bs=32)
    g = torch.Generator().manual_seed(0)
    interp = MultiLabelInterpretation(torch.randn(100, 3, generator=g), torch.tensor(df[labs].values[200:]), labels=labs, dl=dls.valid)
    tl = interp.top_losses(k=100)
    assert sorted(tl.idx) == list(range(100)) and tl.item.tolist() == [f'r{200+i}' for i in tl.idx]
    assert tl.name.tolist() == [short(200 + i) for i in tl.idx]
    assert interp.top_losses(k=5, name_col='c').name.tolist() == [df.c.iloc[200 + i] for i in interp.top_losses(k=5).idx]

def test_name_without_a_dataframe(learn, interp, big):
    assert interp.top_losses(k=20).name.isna().all() and big.top_losses().name.isna().all()
    with pytest.raises(ValueError, match=r"Expected `name_col='title'` with a `dl` whose dataset is backed by a DataFrame, but got a dataset of type list"):
        interp.top_losses(name_col='title')
    with pytest.raises(ValueError, match=r"but got no `dl`"): big.top_losses(name_col='title')
    fig = big.plot_top_losses(k=3)
    assert [c.get_text().get_text() for (r,_),c in sorted(fig.axes[0].tables[0].get_celld().items()) if r == 0] == ['idx', 'item', 'true', 'predicted', 'prob', 'loss']

def test_shuffled_train_dl(tab):
    "A shuffled DataLoader that drops its last batch: rows still follow the dataset, items still match."
    learn,df,labs = tab
    dl = learn.dls.train
    assert dl.shuffle and dl.drop_last
    with learn.no_bar(): interp = learn.interpret_multilabel(dl=dl)
    assert len(interp.probs) == 200
    exp = torch.tensor(df.iloc[:200][labs].values).bool()
    assert torch.equal(interp.targs, exp)
    assert interp.top_losses(k=200).item.tolist() == [f'r{i}' for i in interp.top_losses(k=200).idx]

def brute_confused(pred, targs, labels):
    counts = {}
    for i in range(len(pred)):
        for a in range(len(labels)):
            for b in range(len(labels)):
                if a != b and pred[i, a] and not targs[i, a] and targs[i, b] and not pred[i, b]:
                    counts[a, b] = counts.get((a, b), 0) + 1
    return sorted(([labels[a], labels[b], v] for (a,b),v in counts.items()), key=lambda r: (-r[2], labels.index(r[0]), labels.index(r[1])))

def test_most_confused_and_cooccurrence(raw, interp):
    logits,targs = raw
    for th in (0.5, torch.tensor([.2, .35, .5, .65, .8])):
        pred = torch.sigmoid(logits) > th
        exp = brute_confused(pred, targs.bool(), interp.labels)
        assert interp.most_confused(n=1000, thresh=th).values.tolist() == exp
        assert interp.most_confused(n=3, thresh=th).values.tolist() == exp[:3]
        co = interp.cooccurrence(th)
        assert co.index.name == 'true' and co.columns.name == 'predicted'
        for a in range(5):
            for b in range(5): assert co.iloc[a, b] == sum(1 for i in range(175) if targs[i, a] and pred[i, b])
        np.testing.assert_array_equal(np.diag(co.values), interp.confusion(th).tp.values)

def test_most_confused_ties_random():
    g = torch.Generator().manual_seed(1)
    logits,targs = torch.randn(60, 7, generator=g),(torch.rand(60, 7, generator=g) < 0.4).float()
    interp = MultiLabelInterpretation(logits, targs, thresh=0.5)
    exp = brute_confused(torch.sigmoid(logits) > 0.5, targs.bool(), interp.labels)
    assert interp.most_confused(n=49).values.tolist() == exp
    assert list(interp.most_confused().columns) == ['predicted', 'missed', 'count'] and len(interp.most_confused()) == 5

@pytest.fixture(scope='module')
def big():
    g = torch.Generator().manual_seed(0)
    return MultiLabelInterpretation(torch.randn(300, 20, generator=g), (torch.rand(300, 20, generator=g) < torch.linspace(.05, .5, 20)).float(),
                                    labels=[f'tag{i}' for i in range(20)])

def titles(fig): return [ax.get_title() for ax in fig.axes]

def test_plot_confusion(big, tmp_path):
    cm = big.confusion()
    fig = big.plot_confusion()
    assert isinstance(fig, Figure) and len(fig.axes) == 16
    order = list(cm.sort_values('support', ascending=False, kind='stable').index)
    assert titles(fig) == [f"{l}: P {cm.loc[l, 'precision']:.2f} R {cm.loc[l, 'recall']:.2f}" for l in order[:16]]
    fig = big.plot_confusion(page=1)
    assert len(fig.axes) == 4 and [t.split(':')[0] for t in titles(fig)] == order[16:]
    for sort,col,asc in (('worst', 'f1', True), ('fn', 'fn', False), ('fp', 'fp', False)):
        exp = list(cm.sort_values(col, ascending=asc, kind='stable').index[:5])
        assert [t.split(':')[0] for t in titles(big.plot_confusion(sort=sort, n=5))] == exp
    fig = big.plot_confusion(labels=['tag3', 'tag0'])
    assert [t.split(':')[0] for t in titles(fig)] == ['tag3', 'tag0']
    ax = fig.axes[1]
    assert ax.get_xlabel() == 'predicted' and ax.get_ylabel() == 'true'
    assert [t.get_text() for t in ax.texts] == [str(cm.loc['tag0', c]) for c in ('tn', 'fp', 'fn', 'tp')]
    fig.savefig(tmp_path/'conf.png')
    assert (tmp_path/'conf.png').stat().st_size > 0
    assert fig._repr_png_()[:4] == b'\x89PNG'

def test_plot_top_losses(big, tmp_path):
    fig = big.plot_top_losses('tag5', kind='fp', k=4)
    assert isinstance(fig, Figure) and len(fig.axes[0].tables) == 1
    fig.savefig(tmp_path/'tl.png')
    assert (tmp_path/'tl.png').stat().st_size > 0
    assert big.top_losses().item.isna().all()  # no `dl`: nothing names the samples

def test_bad_input(big):
    cases = [(lambda: big.plot_confusion(labels=['tag1', 'cow']), ValueError, "Expected `labels` to name labels of this interpretation ('tag0', 'tag1'"),
             (lambda: big.plot_confusion(labels=[]), ValueError, "Expected `labels` to name at least one label"),
             (lambda: big.plot_confusion(sort='recall'), ValueError, "Expected `sort` to be one of ('support', 'worst', 'fn', 'fp'), but got 'recall'"),
             (lambda: big.plot_confusion(page=2), ValueError, "Expected `page` to be an int in [0, 1] (20 labels, 16 a page), but got 2"),
             (lambda: big.plot_confusion(page=-1), ValueError, "but got -1"),
             (lambda: big.plot_confusion(n=0), ValueError, "Expected `n` >= 1, but got 0"),
             (lambda: big.plot_confusion(ncols=1.5), TypeError, "Expected `ncols` to be an int, but got 1.5"),
             (lambda: big.top_losses(kind='fn'), ValueError, "Expected a `label` with `kind='fn'`"),
             (lambda: big.top_losses('tag1', kind='tp'), ValueError, "Expected `kind` to be one of ('fp', 'fn'), but got 'tp'"),
             (lambda: big.top_losses('cow'), ValueError, "Expected `label` to name labels of this interpretation"),
             (lambda: big.top_losses(k=0), ValueError, "Expected `k` >= 1, but got 0"),
             (lambda: big.most_confused(n='3'), TypeError, "Expected `n` to be an int, but got '3'"),
             (lambda: big.confusion(thresh=[.5, .5]), ValueError, "Expected `thresh` to have one value per label (20), but got 2 values"),
             (lambda: MultiLabelInterpretation(torch.zeros(3, 2), torch.tensor([[0., 2], [1, 0], [0, 0]])), ValueError, "Expected `targs` to hold only 0 and 1"),
             (lambda: MultiLabelInterpretation(torch.zeros(3, 2), torch.zeros(3, 2), labels=['a']), ValueError, "Expected `labels` to name every output (2)")]
    for f,exc,msg in cases:
        with pytest.raises(exc) as e: f()
        assert msg in str(e.value), (msg, str(e.value))
    many = MultiLabelInterpretation(torch.zeros(2, 12), torch.zeros(2, 12))
    with pytest.raises(ValueError, match=r"'label7', \.\.\. \(12 labels\)\), but got 'x'"): many.top_losses('x')
