"""The Keras adapter end to end under the backend in `KERAS_BACKEND`: fit, History, CSVLogger, ModelCheckpoint, EarlyStopping,
`ThresholdSearch` and `with_decisions`, checked against scikit-learn and the torch threshold search; the ranking metrics
and the papers' table in a compiled `evaluate` (with and without unknown entries) against scikit-learn; metric
serialization and the search's need for a validation pass; many columns as one output of the compiled step.

Usage: KERAS_BACKEND=jax python tests/keras_backend_check.py [--epochs 3] [--quiet]
Raises AssertionError naming what differs; exits 0 and prints a JSON summary when every check passes.
`tests/test_keras_backends.py` runs it once per backend, each in its own process.
"""
import argparse, csv, json, math, os, pathlib, sys, tempfile, time

BACKEND = os.environ.get('KERAS_BACKEND', 'tensorflow')  # Keras' own default
LABELS = ['cat', 'dog', 'bird']
TOL = 1e-5

def check(ok, msg):
    "Raise an AssertionError with `msg` unless `ok`."
    if not ok: raise AssertionError(msg)

def close(got, exp, what, tol=TOL):
    check(abs(float(got) - float(exp)) <= tol, f'{what}: Keras logged {float(got)!r}, expected {float(exp)!r} (tolerance {tol:g})')

def check_imports():
    "Under JAX and TensorFlow, `import fastai_multilabel.keras` must not import torch or fastai; run before anything else imports them."
    import keras  # Keras imports its backend (and, by itself, scikit-learn and pandas): not ours to check
    before = set(sys.modules)
    import fastai_multilabel.keras
    new = sorted({m.split('.')[0] for m in set(sys.modules) - before} & {'torch', 'torchmetrics', 'fastai'})
    if BACKEND != 'torch': check(not new, f'`import fastai_multilabel.keras` under {BACKEND} imported {new}')
    return new

def make_data(n_train=3000, n_val=1000, seed=0):
    "Seeded images (28, 28) whose multi-hot labels follow 3 hidden factors; 'bird' is rare (about 7%)."
    import numpy as np
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    z = rng.normal(size=(n, 3))
    proj = rng.normal(size=(3, 28*28)) / 4
    x = (z @ proj + rng.normal(size=(n, 28*28))).reshape(n, 28, 28).astype('float32')
    y = (z + 0.3 * rng.normal(size=(n, 3)) > np.array([0., 0.5, 1.5])).astype('float32')  # some label noise: thresholds matter
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])

def topk_np(p, k):
    "Mask of the `k` highest scores of each row (no ties in continuous scores)."
    import numpy as np
    m = np.zeros(p.shape, bool)
    np.put_along_axis(m, np.argsort(-p, axis=1, kind='stable')[:, :k], True, axis=1)
    return m

def expected_columns():
    "The `val_` columns our metrics must write, by label name."
    return ({'val_f1_macro_t0p5', 'val_f1_micro_t0p5', 'val_accuracy_t0p5', 'val_top2_accuracy', 'val_f1_samples_t0p5',
             'val_subset_accuracy_t0p5', 'val_f1_macro_tuned', 'val_tuned_f1_perlabel_bins1024', 'val_tuned_thresh_perlabel_mean_bins1024'}
            | {f'val_f1_{l}_t0p5' for l in LABELS} | {f'val_recall_{l}_t0p5' for l in LABELS})

def fit(tmp, epochs, bs=64):
    "The issue's model trained on `make_data`, with our metrics, Keras' own, and the callbacks users combine them with."
    import keras
    from fastai_multilabel.keras import default_metrics, TopKAccuracy, FScore, PerLabelRecall, SubsetAccuracy, PrecisionAtK, ThresholdSearch
    (x, y), (xv, yv) = make_data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(128, activation='relu'),
                              keras.layers.Dense(3, activation='sigmoid')])
    search = ThresholdSearch(per_label=True)
    model.compile('adam', loss='binary_crossentropy',
                  metrics=[*default_metrics(LABELS), TopKAccuracy(2), FScore(average='samples'), PerLabelRecall(LABELS), SubsetAccuracy(),
                           FScore(thresh='tuned'), PrecisionAtK(2), keras.metrics.F1Score(threshold=0.5, average='macro'),
                           keras.metrics.BinaryAccuracy(), keras.metrics.Precision(top_k=2), search.histogram])
    stop = keras.callbacks.EarlyStopping(monitor='val_f1_macro_t0p5', patience=5)
    cbs = [search, stop, keras.callbacks.ModelCheckpoint(str(tmp/'m-{epoch:02d}-{val_f1_macro_t0p5:.3f}.keras')),
           keras.callbacks.CSVLogger(str(tmp/'log.csv'))]
    h = model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=bs, callbacks=cbs, verbose=0)
    return model, search, stop, h.history, (xv, yv)

def check_vs_sklearn(hist, p, y):
    "The last epoch's `val_` columns against scikit-learn (and numpy for top-2) on `p` = `model.predict(x_val)`, and against Keras' own."
    import numpy as np
    from sklearn.metrics import f1_score, recall_score, accuracy_score
    last = {k: v[-1] for k, v in hist.items()}
    yp = p > np.float32(0.5)
    close(last['val_f1_macro_t0p5'], f1_score(y, yp, average='macro', zero_division=0), 'val_f1_macro_t0p5 vs sklearn')
    close(last['val_f1_micro_t0p5'], f1_score(y, yp, average='micro', zero_division=0), 'val_f1_micro_t0p5 vs sklearn')
    close(last['val_f1_samples_t0p5'], f1_score(y, yp, average='samples', zero_division=0), 'val_f1_samples_t0p5 vs sklearn')
    close(last['val_accuracy_t0p5'], accuracy_score(y.ravel(), yp.ravel()), 'val_accuracy_t0p5 vs sklearn on ravel')
    close(last['val_subset_accuracy_t0p5'], accuracy_score(y, yp), 'val_subset_accuracy_t0p5 vs sklearn (subset accuracy)')
    for l, r, f in zip(LABELS, recall_score(y, yp, average=None, zero_division=0), f1_score(y, yp, average=None, zero_division=0)):
        close(last[f'val_recall_{l}_t0p5'], r, f'val_recall_{l}_t0p5 vs sklearn')
        close(last[f'val_f1_{l}_t0p5'], f, f'val_f1_{l}_t0p5 vs sklearn')
    close(last['val_top2_accuracy'], (topk_np(p, 2) == (y == 1)).mean(), 'val_top2_accuracy vs numpy (hamming, top 2 predicted)')
    close(last['val_f1_macro_t0p5'], last['val_f1_score'], "val_f1_macro_t0p5 vs Keras' F1Score(threshold=0.5, average='macro')")
    close(last['val_accuracy_t0p5'], last['val_binary_accuracy'], "val_accuracy_t0p5 vs Keras' BinaryAccuracy")
    close(last['val_precision_at2'], (topk_np(p, 2) & (y == 1)).sum(1).mean() / 2, 'val_precision_at2 vs numpy')
    close(last['val_precision_at2'], last['val_precision'], "val_precision_at2 vs Keras' Precision(top_k=2) (k hits per sample: pooled = per-sample mean)")
    close(hist['val_f1_macro_tuned'][0], hist['val_f1_macro_t0p5'][0], 'val_f1_macro_tuned before any search (thresholds start at 0.5)')
    return {'val_f1_macro_t0p5': last['val_f1_macro_t0p5'], 'val_top2_accuracy': last['val_top2_accuracy']}

def check_names_and_csv(hist, csv_path, epochs):
    "Every column is in History for every epoch, named after the labels; the CSV holds them as plain numbers, equal to History."
    missing = expected_columns() - set(hist)
    check(not missing, f'History lacks {sorted(missing)}; it has {sorted(hist)}')
    check(all('.' not in k for k in hist), f"Column names with '.': {[k for k in hist if '.' in k]}")
    short = {k: len(v) for k, v in hist.items() if len(v) != epochs}
    check(not short, f'Columns without a value for each of the {epochs} epochs: {short}')
    with open(csv_path) as f: rows = list(csv.DictReader(f))
    check(len(rows) == epochs, f'CSVLogger wrote {len(rows)} rows, expected {epochs}')
    for c in sorted(expected_columns() | {f'recall_{l}_t0p5' for l in LABELS}):
        check(c in rows[-1], f'CSVLogger column {c!r} missing; header: {list(rows[-1])}')
        try: v = float(rows[-1][c])
        except ValueError: raise AssertionError(f'CSVLogger column {c!r} holds {rows[-1][c]!r}, not a plain number')
        check(math.isfinite(v), f'CSVLogger column {c!r} holds {v}')
        close(v, hist[c][-1], f'CSV column {c!r} vs History', 1e-6)

def check_checkpoints(tmp, hist, epochs, stop, model, xv):
    "One checkpoint per epoch named by the template; the last reloads (our metrics serialize) and predicts as `model`; EarlyStopping maximized."
    import keras, numpy as np
    exp = [f"m-{e+1:02d}-{hist['val_f1_macro_t0p5'][e]:.3f}.keras" for e in range(epochs)]
    got = sorted(p.name for p in tmp.glob('m-*.keras'))
    check(got == sorted(exp), f'ModelCheckpoint files {got}, expected {exp}')
    check(stop.stopped_epoch == 0, f'EarlyStopping stopped at epoch {stop.stopped_epoch} with patience 5')
    check(stop.best == max(hist['val_f1_macro_t0p5']),
          f"EarlyStopping's best {stop.best} is not the highest val_f1_macro_t0p5 {hist['val_f1_macro_t0p5']}: mode 'max' not inferred")
    reloaded = keras.models.load_model(tmp/exp[-1])
    check(np.array_equal(reloaded.predict(xv, verbose=0), model.predict(xv, verbose=0)), f'{exp[-1]} reloaded predicts differently')
    return got

def check_search(hist, search, p, y):
    "The logged tuned F1 is the binned search's on a torch histogram of the validation probabilities; the exact one is within its bound."
    import numpy as np, torch
    from fastai_multilabel.streaming import ThresholdHistogram
    from fastai_multilabel.thresholds import best_thresholds, best_thresholds_binned, binned_error_bound
    pt, yt = torch.from_numpy(p), torch.from_numpy(y)
    th = ThresholdHistogram(1024, sigmoid=False)
    th.update(pt, yt)
    h = th.compute()
    check(torch.equal(h, torch.from_numpy(search.histogram.histogram().round().astype('int64'))),
          "Keras' search.histogram differs from ThresholdHistogram(1024, sigmoid=False) on model.predict(x_val)")
    bth, bsc = best_thresholds_binned(h)
    close(hist['val_tuned_f1_perlabel_bins1024'][-1], bsc.mean(), 'val_tuned_f1_perlabel_bins1024 vs best_thresholds_binned', 1e-12)
    close(hist['val_tuned_thresh_perlabel_mean_bins1024'][-1], bth.mean(), 'val_tuned_thresh_perlabel_mean_bins1024 vs best_thresholds_binned', 1e-7)
    check(np.array_equal(search.best, bth.numpy()), f'search.best {search.best} differs from best_thresholds_binned {bth.numpy()}')
    eth, esc = best_thresholds(pt, yt)
    gap, bound = (esc - bsc).double(), binned_error_bound(h)
    check(bool((gap >= -1e-12).all()), f'The exact best F1 {esc.tolist()} is below the binned one {bsc.tolist()}')
    check(bool((gap <= bound + 1e-12).all()), f'The binned F1 {bsc.tolist()} is further than binned_error_bound {bound.tolist()} below the exact {esc.tolist()}')
    return {'tuned_f1_binned': float(bsc.mean()), 'tuned_f1_exact': float(esc.mean()), 'bound': bound.tolist(), 'thresh': search.best.tolist()}

def check_tuned_metric(hist, search, p, y, epochs):
    "`f1_macro_tuned` of the last epoch uses the thresholds the search found one epoch before."
    import numpy as np
    from sklearn.metrics import f1_score
    check(len(search.history) == epochs, f'search.history has {len(search.history)} entries, expected {epochs}')
    prev = np.asarray(search.history[-2]['thresh'], 'float32')
    close(hist['val_f1_macro_tuned'][-1], f1_score(y, p > prev, average='macro', zero_division=0),
          f'val_f1_macro_tuned of the last epoch vs sklearn at the thresholds of the epoch before {prev.tolist()}')
    return {'val_f1_macro_tuned': hist['val_f1_macro_tuned'][-1], 'used_thresh': prev.tolist()}

def check_decisions(tmp, model, search, xv, p):
    "`with_decisions` saved and reloaded predicts `p > search.best` exactly, and with `k=2` the top-2 mask."
    import keras, numpy as np
    from fastai_multilabel.keras import with_decisions
    for kw, exp, what in [(dict(thresh=search.best), p > search.best.astype('float32'), 'p > search.best'),
                          (dict(k=2), topk_np(p, 2), 'the top-2 mask')]:
        path = tmp/f"decisions-{'k2' if 'k' in kw else 'tuned'}.keras"
        with_decisions(model, **kw).save(path)
        got = keras.models.load_model(path).predict(xv, batch_size=64, verbose=0)
        check(set(np.unique(got).tolist()) <= {0., 1.}, f'with_decisions({kw}) predicts values other than 0/1: {np.unique(got)}')
        diff = int((got.astype(bool) != exp).sum())
        check(diff == 0, f'with_decisions({kw}) reloaded from {path.name} differs from {what} in {diff} of {exp.size} entries')

def check_serialization():
    "Every metric survives `keras.metrics.serialize`/`deserialize` with its name (what `model.save` and ModelCheckpoint need)."
    import keras
    from fastai_multilabel import keras as fk
    ms = [fk.DefaultMetrics(), fk.DefaultMetrics(LABELS, thresh=[.2, .3, .4]), fk.DefaultMetrics(LABELS, k=2), fk.FScore(beta=2, average='samples', zero_division=1.),
          fk.FScore(thresh='tuned'), fk.ThresholdAccuracy(.3, from_logits=True), fk.SubsetAccuracy(), fk.TopKAccuracy(2, 'overlap'),
          fk.PrecisionAtK(2), fk.RecallAtK(2), fk.PerLabelRecall(LABELS), fk.PerLabelPrecision(LABELS), fk.PerLabelFScore(LABELS, beta=.5),
          fk.ScoreHistogram(64), fk.FScore(average='micro', ignore_index=-1), fk.AveragePrecision('weighted', 256), fk.RocAuc(ignore_index=-1),
          fk.PerLabelAveragePrecision(LABELS), fk.PerLabelRocAuc(LABELS, from_logits=True), fk.LabelRankingAveragePrecision(ignore_index=-1),
          fk.CoverageError(), fk.RankingLoss(), fk.PaperMetrics(LABELS, k=2, ignore_index=-1), fk.ScoreHistogram(ignore_index=-1)]
    for m in ms:
        try: back = keras.metrics.deserialize(keras.metrics.serialize(m))
        except Exception as e: raise AssertionError(f'{type(m).__name__} {m.name!r} does not serialize: {type(e).__name__}: {e}') from e
        check(type(back) is type(m) and back.name == m.name and back.get_config() == m.get_config(),
              f'{m.name!r} deserializes as {type(back).__name__} {back.get_config()}, expected {m.get_config()}')

def check_ranking():
    "AP, ROC AUC, LRAP and the papers' table in a compiled `evaluate` on a fixed batch, against scikit-learn and NumPy, with and without unknown entries."
    import keras, numpy as np
    from sklearn import metrics as skm
    from fastai_multilabel.keras import AveragePrecision, RocAuc, LabelRankingAveragePrecision, paper_metrics
    rng = np.random.default_rng(2)
    y = (rng.random((200, 5)) < .3).astype('float32')
    p = ((rng.integers(0, 64, (200, 5)) * 16 + 0.5) / 1024).astype('float32')  # one value per bin of 1024, ties included: binned = exact
    known = rng.random((200, 5)) >= .15
    model = keras.Sequential([keras.Input((5,)), keras.layers.Identity()])
    def evaluate(metrics, targets):
        model.compile(loss='mse', metrics=metrics)
        return model.evaluate(p, targets, batch_size=64, verbose=0, return_dict=True)  # batches of 64: the last one uneven
    got = evaluate([AveragePrecision(), LabelRankingAveragePrecision(), *paper_metrics()], y)
    close(got['map_macro'], skm.average_precision_score(y, p, average='macro'), 'map_macro vs sklearn')
    close(got['lrap'], skm.label_ranking_average_precision_score(y, p), 'lrap vs sklearn')
    tp, pp = ((p > .5) & (y == 1)).sum(0), (p > .5).sum(0)
    close(got['cp_t0p5'], np.mean(np.where(pp > 0, tp / np.maximum(pp, 1), 0)), 'cp_t0p5 vs numpy')
    close(got['of1_t0p5'], skm.f1_score(y.ravel(), (p > .5).ravel()), 'of1_t0p5 vs sklearn (micro F1)')
    res = {'map_macro': got['map_macro'], 'lrap': got['lrap']}
    got = evaluate([RocAuc(ignore_index=-1), AveragePrecision('micro', ignore_index=-1), LabelRankingAveragePrecision(ignore_index=-1)],
                   np.where(known, y, -1.).astype('float32'))
    close(got['roc_auc_macro'], np.mean([skm.roc_auc_score(y[known[:, j], j], p[known[:, j], j]) for j in range(5)]), 'roc_auc_macro (unknown entries) vs sklearn on the known ones')
    close(got['map_micro'], skm.average_precision_score(y[known], p[known]), 'map_micro (unknown entries) vs sklearn on the known ones')
    lrap = [skm.label_ranking_average_precision_score(y[i:i+1, known[i]], p[i:i+1, known[i]]) if known[i].any() else 1. for i in range(200)]
    close(got['lrap'], np.mean(lrap), 'lrap (unknown entries) vs sklearn on the known ones')
    return {**res, 'roc_auc_macro_unknown': got['roc_auc_macro'], 'lrap_unknown': got['lrap']}

def check_search_needs_validation():
    "The search tunes on validation scores only: epochs without validation (`validation_freq=2`) are skipped, no validation at all raises."
    import keras, numpy as np
    from fastai_multilabel.keras import ThresholdSearch
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 4)).astype('float32'); y = (x[:, :3] + rng.normal(size=(256, 3)) > 0).astype('float32')
    def fit(**kw):
        search = ThresholdSearch()
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation='sigmoid')])
        m.compile('adam', 'binary_crossentropy', metrics=[search.histogram])
        return search, m.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[search], **kw).history
    search, hist = fit(validation_data=(x[:64], y[:64]), validation_freq=2)
    check([h['epoch'] for h in search.history] == [1], f'With validation_freq=2 the search ran after epochs {[h["epoch"] for h in search.history]}, expected [1]')
    check(len(hist[search.score_name]) == 1, f'{search.score_name} logged {len(hist[search.score_name])} times with one validation pass')
    try: fit()
    except ValueError as e: check('validation' in str(e), f'Unclear error without validation data: {e}')
    else: raise AssertionError('ThresholdSearch without validation data searched the training scores instead of raising')

def check_zero_division_nan():
    """A score left NaN by `zero_division=nan` stays out of the scores built on it, as on the fastai side: with no label
    predicted, CP and OP are NaN and CF1 and OF1 (whose division by CP + CR has its own zero_division 0) are 0; and the
    adapter's shortcut for a division with zero_division 0 gives 0 for a NaN, negative or zero denominator."""
    import math, keras, numpy as np
    from keras import ops
    from fastai_multilabel.formulas import safe_div
    from fastai_multilabel.keras import paper_metrics
    from fastai_multilabel.keras.metrics import KERAS
    got = ops.convert_to_numpy(safe_div(np.array([1, 1, 1, 3], 'float32'), np.array([math.nan, -1, 0, 2], 'float32'), xp=KERAS))
    check(np.array_equal(got, [0, 0, 0, 1.5]), f'safe_div by [nan, -1, 0, 2] with zero_division 0 gave {got}, expected [0, 0, 0, 1.5]')
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], 'float32')
    p = np.array([[.1, .2, .3], [.4, .1, .2], [.3, .3, .1], [.2, .4, .45]], 'float32')  # nothing above 0.5
    model = keras.Sequential([keras.Input((3,)), keras.layers.Identity()])
    model.compile(loss='mse', metrics=paper_metrics(k=1, zero_division=math.nan))
    got = model.evaluate(p, y, batch_size=64, verbose=0, return_dict=True)
    for n in ('cp', 'op'): check(math.isnan(got[f'{n}_t0p5_zdnan']), f'{n}_t0p5_zdnan with no label predicted: {got[f"{n}_t0p5_zdnan"]}, expected NaN')
    for n in ('cr', 'cf1', 'or', 'of1'): close(got[f'{n}_t0p5_zdnan'], 0., f'{n}_t0p5_zdnan with no label predicted')

def check_topk_ties():
    """Top-k metrics on scores with many ties (each row: 6 labels out of 4 values) equal the fastai functions in a compiled `evaluate`:
    JAX and TensorFlow count the top `k` from `top_k`'s indices, which must break ties by the lowest index like the torch path."""
    import keras, numpy as np, torch
    from fastai_multilabel import keras as fk, functional as F
    rng = np.random.default_rng(3)
    p = rng.choice(np.array([.1, .4, .6, .9], 'float32'), (200, 6)); y = (rng.random((200, 6)) < .4).astype('float32')
    model = keras.Sequential([keras.Input((6,)), keras.layers.Identity()])
    ms = [fk.TopKAccuracy(2), fk.TopKAccuracy(3, 'overlap'), fk.PrecisionAtK(2), fk.RecallAtK(3)]
    model.compile(loss='mse', metrics=ms)
    got = model.evaluate(p, y, batch_size=64, verbose=0, return_dict=True)
    pt, yt = torch.from_numpy(p).logit(), torch.from_numpy(y)  # the functions take logits
    exp = {'top2_accuracy': F.multilabel_topk_accuracy(pt, yt, 2), 'top3_accuracy_overlap': F.multilabel_topk_accuracy(pt, yt, 3, 'overlap'),
           'precision_at2': F.multilabel_precision_at_k(pt, yt, 2), 'recall_at3': F.multilabel_recall_at_k(pt, yt, 3)}
    check([m.name for m in ms] == list(exp), f'top-k names {[m.name for m in ms]}, expected {list(exp)}')
    for n, v in exp.items(): close(got[n], float(v), f'{n} on tied scores vs fastai_multilabel.functional')
    model.compile(loss='mse', metrics=fk.default_metrics(k=2))  # its top-k column, on its own
    got = model.evaluate(p, y, batch_size=64, verbose=0, return_dict=True)
    close(got['top2_accuracy'], float(exp['top2_accuracy']), "default_metrics(k=2)'s top2_accuracy on tied scores vs fastai_multilabel.functional")

def topk_hits_np(p, y, k, known=None):
    "Per row, the targets among the `k` highest scores of the known labels, tied scores ranked by the lowest index (NumPy's stable sort)."
    import numpy as np
    q = p if known is None else np.where(known, p, -np.inf)
    top = np.argsort(-q, axis=1, kind='stable')[:, :k]
    hit = np.take_along_axis(y, top, 1)
    if known is not None: hit = hit * np.take_along_axis(known, top, 1)
    return hit.sum(1)

def check_topk_paths():
    """Top-k hits on every path a backend takes (k <= 2: TensorFlow `top_k(x, 1)` rounds, JAX three reductions, torch `max` rounds;
    k > 2: `top_k` on TensorFlow and JAX, `topk` or its tie-exact count on torch; by chunks of the row on TensorFlow for k = 2
    from 512 scores, on JAX for every k from 256, also k > 2 on TensorFlow from 512): continuous scores, one tied row per
    batch, rows of one value, -0.0 tied with +0.0 (also under TensorFlow's XLA, Keras' default on a GPU, whose `top_k` ranks
    -0.0 lower), scores all negative (logits: the -inf padding of a chunked row must rank below them), (long rows) scores
    tied across chunks; unknown entries with rows of fewer known labels than k; rows of 9 scores, of 521 (a prime: padded
    chunks) and of 1000; `precision_at{k}` and `default_metrics(k=...)`'s column against NumPy."""
    import keras, numpy as np
    from fastai_multilabel import keras as fk
    rng = np.random.default_rng(6)
    n = 256
    for L in (9, 521, 1000):
        cont = rng.random((n, L)).astype('float32')
        tied = cont.copy(); tied[::64, 1] = tied[::64, 4] = np.sort(tied[::64], 1)[:, -2]  # per batch of 64, one row ties its 2nd score
        flat = cont.copy(); flat[5::64] = .5                                                  # one row of equal scores per batch
        zeros = -cont; zeros[:, ::3] = -0.; zeros[:, 1::3] = 0.  # the top scores (not probabilities): -0.0 and +0.0, tied
        cases = {'continuous': cont, 'a tied row per batch': tied, 'a row of equal scores per batch': flat, 'signed zeros': zeros,
                 'negative scores': -1. - cont}
        if L > 9:  # saturated scores (1.0) in many chunks; in odd rows 1.0 only near the end, where a .95 ties the one at 0 (a
            # lower chunk), which ranks 2nd; one row's top 2 in its last two entries
            sat = cont * .9; sat[:, ::97] = 1.; sat[1::2, ::97] = .95; sat[1::2, -3] = 1.; sat[1::2, -2] = .95
            sat[3::64] = .5; sat[3::64, -2:] = .9
            cases['scores tied across chunks'] = sat
        y = (rng.random((n, L)) < .4).astype('float32')
        known = rng.random((n, L)) >= .3; known[7::32] = False; known[9::32, :-1] = False  # rows with no known label, with one (the last)
        known[11::32, 1:-1] = False; known[13::32, 2:] = False                               # with two: first and last, first two
        known[15::32, 1:] = False                                                             # with one, the first
        model = keras.Sequential([keras.Input((L,)), keras.layers.Identity()])
        def evaluate(metrics, p, t, jit='auto'):
            model.compile(loss='mse', metrics=metrics, jit_compile=jit)
            return model.evaluate(p, t, batch_size=64, verbose=0, return_dict=True)
        for what, p in cases.items():
            what = f'{what}, {L} labels'
            for k in (1, 2, 3):
                probs = p.min() >= 0  # `default_metrics` takes probabilities
                got = evaluate([fk.PrecisionAtK(k), *(fk.default_metrics(k=k) if probs else [])], p, y)
                hits = topk_hits_np(p, y, k)
                close(got[f'precision_at{k}'], hits.mean() / k, f'precision_at{k} on {what} vs NumPy')
                if probs: close(got[f'top{k}_accuracy'], ((L - k - y.sum(1) + 2 * hits) / L).mean(), f"default_metrics(k={k})'s top{k}_accuracy on {what} vs NumPy")
                yk = np.where(known, y, -1.).astype('float32')
                got = evaluate([fk.PrecisionAtK(k, ignore_index=-1)], p, yk)
                nk, hits = known.sum(1), topk_hits_np(p, y, k, known)
                close(got[f'precision_at{k}'], (hits / np.maximum(np.minimum(nk, k), 1))[nk > 0].mean(), f'precision_at{k} on {what} with unknown entries vs NumPy')
                if BACKEND == 'tensorflow' and what.startswith('signed zeros'):  # `tf.function(jit_compile=True)`
                    got = evaluate([fk.PrecisionAtK(k)], p, y, jit=True)
                    hits = topk_hits_np(p, y, k)
                    close(got[f'precision_at{k}'], hits.mean() / k, f'precision_at{k} on {what} under XLA vs NumPy')

def step_outputs(metric, y, p):
    "How many tensors the compiled step of `metric` (update, then result) returns: JAX `jax.jit`, TensorFlow `tf.function`; None on torch."
    import keras
    if BACKEND == 'jax':
        import jax
        metric.update_state(y, p)
        f = jax.jit(lambda s, a, b: metric.stateless_result(metric.stateless_update_state(s, a, b)))
        return len(jax.tree_util.tree_leaves(f([v.value for v in metric.variables], y, p)))
    if BACKEND == 'tensorflow':
        import tensorflow as tf
        f = tf.function(lambda a, b: (metric.update_state(a, b), metric.result())[1])
        return len(f.get_concrete_function(tf.TensorSpec([None, y.shape[1]]), tf.TensorSpec([None, y.shape[1]])).outputs)

def check_columns():
    """A many-column metric's columns, one output of the compiled step: in the progress bar, History (with
    steps_per_execution=3 but on torch), evaluate, train_on_batch and test_on_batch, each equal to scikit-learn; its eager result is a dict."""
    import contextlib, copy, io, pickle, keras, numpy as np
    from sklearn.metrics import f1_score
    from fastai_multilabel.keras import default_metrics, Columns
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 6)).astype('float32'); y = (x[:, :3] + rng.normal(size=(300, 3)) > .5).astype('float32')
    names = ['f1_macro_t0p5', 'f1_micro_t0p5', 'accuracy_t0p5', 'top2_accuracy'] + [f'f1_{l}_t0p5' for l in LABELS]
    m, = default_metrics(LABELS, k=2)
    n_out = step_outputs(m, y[:64], x[:64, :3])
    check(n_out in (None, 1), f'The compiled step of default_metrics(LABELS, k=2) returns {n_out} tensors for its {len(names)} columns, expected 1')
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation='sigmoid')])
    model.compile('adam', 'binary_crossentropy', metrics=default_metrics(LABELS, k=2),
                  steps_per_execution=1 if BACKEND == 'torch' else 3)  # torch runs one step per call
    out = io.StringIO()
    with contextlib.redirect_stdout(out): hist = model.fit(x, y, validation_data=(x, y), epochs=2, batch_size=64, verbose=1).history
    shown = out.getvalue()
    missing = [n for n in names if f' {n}: ' not in shown or f' val_{n}: ' not in shown]
    check(not missing, f'The progress bar lacks {missing}: {shown[-600:]!r}')
    p = np.asarray(model.predict(x, verbose=0))
    exp = f1_score(y, p > np.float32(.5), average=None, zero_division=0)
    for l, e in zip(LABELS, exp): close(hist[f'val_f1_{l}_t0p5'][-1], e, f'val_f1_{l}_t0p5 with steps_per_execution=3 vs sklearn')
    got = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    as_list = model.evaluate(x, y, batch_size=64, verbose=0)
    check(sorted(got) == sorted(['loss', *names]), f'evaluate logged {sorted(got)}')
    check(len(as_list) == len(got) and sorted(as_list) == sorted(got.values()), f'evaluate() as a list {as_list} differs from its dict {got}')
    for l, e in zip(LABELS, exp): close(got[f'f1_{l}_t0p5'], e, f'evaluate f1_{l}_t0p5 vs sklearn')
    t = model.test_on_batch(x[:64], y[:64], return_dict=True)
    close(t['f1_cat_t0p5'], f1_score(y[:64, 0], p[:64, 0] > np.float32(.5), zero_division=0), 'test_on_batch f1_cat_t0p5 vs sklearn')
    check(set(names) <= set(model.train_on_batch(x[:64], y[:64], return_dict=True)), 'train_on_batch lacks a column')
    m.reset_state(); m.update_state(y, p)
    r = m.result()
    check(isinstance(r, Columns) and isinstance(r, dict) and list(r) == names, f'The eager result {r!r} is not a dict of the columns {names}')
    check(all(isinstance(v, np.floating) for v in r.values()), f'The eager result holds {[type(v) for v in r.values()]}, expected NumPy floats')
    close(r['f1_dog_t0p5'], exp[1], 'eager result f1_dog_t0p5 vs sklearn')
    check(dict(r) == pickle.loads(pickle.dumps(r)) == copy.deepcopy(r) == r.copy(), 'A pickled or copied result differs')
    if BACKEND == 'tensorflow':
        import tensorflow as tf
        check(tf.nest.map_structure(float, r) == {n: float(v) for n, v in r.items()}, 'tf.nest.map_structure on the eager result differs')
    if BACKEND == 'jax':
        import jax
        check(len(jax.tree_util.tree_leaves(r)) == 1 and dict(jax.tree_util.tree_map(lambda v: v * 2, r)) == {n: 2 * v for n, v in r.items()},
              'jax.tree_util sees the result as other than one vector')
    return {'step_outputs': n_out}

def check_bad_values():
    """Bad values make the metrics NaN in a compiled `evaluate` (JAX checks them entry by entry, fused into the counts): targets
    of inf, -inf, NaN, 0.5 or 2, NaN or infinite scores, probabilities below 0 or above 1, an infinite or NaN sample weight;
    good data (and finite weights) gives numbers."""
    import keras, numpy as np
    from fastai_multilabel import keras as fk
    rng = np.random.default_rng(4)
    p = rng.random((100, 4)).astype('float32'); y = (rng.random((100, 4)) < .4).astype('float32')
    model = keras.Sequential([keras.Input((4,)), keras.layers.Identity()])
    model.compile(loss='mse', metrics=[*fk.default_metrics(k=2), fk.FScore(average='samples'), fk.TopKAccuracy(3), fk.AveragePrecision(),
                                       fk.FScore(average='micro', ignore_index=-1, name='f1_micro_unknown')])  # names: one log key each
    def run(pp, yy): return {k: v for k, v in model.evaluate(pp, yy, batch_size=32, verbose=0, return_dict=True).items() if k != 'loss'}
    check(not any(np.isnan(v) for v in run(p, y).values()), 'good data gave NaN')
    for what, (tv, pv) in {'target inf': (np.inf, None), 'target -inf': (-np.inf, None), 'target NaN': (np.nan, None), 'target 0.5': (.5, None),
                          'target 2': (2., None), 'score NaN': (None, np.nan), 'score inf': (None, np.inf), 'probability -0.1': (None, -.1),
                          'probability 1.5': (None, 1.5)}.items():
        yy, pp = y.copy(), p.copy()
        if tv is not None: yy[40, 1] = tv
        if pv is not None: pp[40, 1] = pv
        got = run(pp, yy)
        ok = [k for k, v in got.items() if not np.isnan(v) and not (pv in (-.1, 1.5) and k == 'top3_accuracy')]  # top-k ranks any scores
        check(not ok, f'{what}: {ok} not NaN')
    model.compile(loss='mse', weighted_metrics=[*fk.default_metrics(k=2), fk.FScore(average='samples'), fk.TopKAccuracy(3), fk.AveragePrecision()])
    def weighted(sw): return {k: v for k, v in model.evaluate(p, y, sample_weight=sw, batch_size=32, verbose=0, return_dict=True).items() if k != 'loss'}
    got = weighted(rng.random(100).astype('float32'))  # finite weights: numbers
    check(len(got) == 7 and not any(np.isnan(v) for v in got.values()), f'finite sample weights gave {got}')
    for what, wv in {'sample weight inf': np.inf, 'sample weight NaN': np.nan}.items():  # counts of NaN without a bad score
        sw = np.ones(100, 'float32'); sw[40] = wv
        got = weighted(sw)
        check(all(np.isnan(v) for v in got.values()), f'{what}: {[k for k, v in got.items() if not np.isnan(v)]} not NaN')

def main(epochs=3, quiet=False):
    t0 = time.perf_counter()
    new = check_imports()
    import keras, numpy as np
    check(keras.backend.backend() == BACKEND, f'Keras runs {keras.backend.backend()}, expected KERAS_BACKEND={BACKEND}')
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        model, search, stop, hist, (xv, yv) = fit(tmp, epochs)
        t_fit = time.perf_counter() - t0
        p = np.asarray(model.predict(xv, batch_size=64, verbose=0), 'float32')
        res = dict(backend=BACKEND, imported_by_adapter=new, epochs=epochs, fit_seconds=round(t_fit, 2))
        res.update(check_vs_sklearn(hist, p, yv))
        check_names_and_csv(hist, tmp/'log.csv', epochs)
        res['checkpoints'] = check_checkpoints(tmp, hist, epochs, stop, model, xv)
        res.update(check_search(hist, search, p, yv))
        res.update(check_tuned_metric(hist, search, p, yv, epochs))
        check_decisions(tmp, model, search, xv, p)
    res.update(check_ranking())
    check_serialization()
    check_search_needs_validation()
    check_topk_ties()
    check_topk_paths()
    check_zero_division_nan()
    check_bad_values()
    res.update(check_columns())
    res['seconds'] = round(time.perf_counter() - t0, 2)
    if not quiet: print(json.dumps(res))

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=3, help='at least 2: the tuned metric is checked one epoch after a search')
    ap.add_argument('--quiet', action='store_true')
    a = ap.parse_args()
    main(a.epochs, a.quiet)
