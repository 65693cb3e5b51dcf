"""Per-batch cost of our Keras metrics against Keras' own, on the torch, JAX and TensorFlow backends, run the way `fit` runs them.

Contenders, all fed the same batches (probabilities in [0, 1] and 0/1 float32 targets, as a sigmoid model and Keras' data give):
  calls_only            a step that updates nothing: the cost of the call itself (dispatch of a compiled function)
  ours_FScore           `FScore()` (macro F1 at 0.5)
  ours_recommended      `default_metrics(labels, k=2)`: macro/micro/per-label F1, accuracy and top-2 accuracy, one metric
  ours_rec_nolabels     `default_metrics(k=2)`: the same without the per-label columns
  keras_F1Score         `keras.metrics.F1Score(threshold=0.5)`
  keras_F1Score_BinAcc  `[keras.metrics.F1Score(threshold=0.5), keras.metrics.BinaryAccuracy()]`
  ours_default_nolabels, ours_TopKAccuracy2, ours_PerLabelFScore: `default_metrics()`, `[TopKAccuracy(2)]` and
                        `[PerLabelFScore(labels)]` alone, to see where the recommended set's time goes
Targets (issue 17): ours_rec_nolabels <= 1.0x keras_F1Score_BinAcc, ours_FScore <= 1.0x keras_F1Score, ours_recommended <= 2.0x
keras_F1Score_BinAcc.
One step is what Keras' train/test step does with the compiled metrics: `update_state` of every metric of the set, then `result()`
of each (Keras reads the results after every batch for its logs), compiled as Keras 3 compiles its step by default:
  jax         `jax.jit` (donate_argnums=0, as Keras) around `stateless_update_state` + `stateless_result` of every metric
  tensorflow  `tf.function(reduce_retracing=True, jit_compile=X)` around `update_state` + `result`; X is Keras' 'auto':
              False on a CPU-only machine, True where TF sees a GPU (`--modes xla` adds jit_compile=True on the CPU)
  torch       eager, as Keras' torch trainer runs (jit_compile='auto' is False there)
`--modes eager` adds plain eager calls on every backend (JAX eager dispatches op by op: slow, not what `fit` does).
Metrics are built on one batch and reset before timing; the compiled step is warmed up (traced/compiled) before timing.
Every batch is a distinct pre-generated tensor of the backend (a pool of up to --pool-mb, cycled when more batches are
asked for, so the data never sits in cache). A run is --batches batches (--big-batches for sizes of 100,000 scores or
more per batch, where one step of the slowest contender takes tens of ms). Each backend and thread count runs in its own
process; within it the contenders alternate, --runs times, and the fastest run of each is kept.
Threads: torch `set_num_threads`; TF `tf.config.threading` intra/inter-op; JAX
`XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1` for 1 thread and XLA's default pool (one thread
per core) otherwise; OMP_NUM_THREADS/MKL_NUM_THREADS for all.
Prints microseconds per batch and the ratios ours_rec_nolabels and ours_recommended / keras_F1Score_BinAcc, ours_FScore / keras_F1Score.
Usage: python benchmarks/keras_metrics.py [--quick] [--backends torch,jax,tensorflow] [--threads 1,2] [--sizes 64x17,64x100,256x1000]
                                  [--batches 2000] [--big-batches 200] [--runs 5] [--modes keras,xla,eager] [--json]
"""
import argparse, json, os, subprocess, sys, time


BACKENDS = ['torch', 'jax', 'tensorflow']
SIZES = [(64, 17), (64, 100), (256, 1000)]
NAMES = ['calls_only', 'ours_FScore', 'ours_rec_nolabels', 'ours_recommended', 'keras_F1Score', 'keras_F1Score_BinAcc',
         'ours_default_nolabels', 'ours_TopKAccuracy2', 'ours_PerLabelFScore']  # the last three: where the recommended set's time goes

def thread_env(backend, threads):
    "Environment of the process that measures `backend` with `threads` threads (read when the backend loads)."
    env = {**os.environ, 'KERAS_BACKEND': backend, 'OMP_NUM_THREADS': str(threads), 'MKL_NUM_THREADS': str(threads), 'TF_CPP_MIN_LOG_LEVEL': '2'}
    if backend == 'jax' and threads == 1: env['XLA_FLAGS'] = '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1'
    return env

def make(name, n_labels):
    "The metrics of contender `name`."
    import keras
    from fastai_multilabel.keras import FScore, TopKAccuracy, PerLabelFScore, default_metrics
    labels = [f'label{i}' for i in range(n_labels)]
    return {'calls_only': lambda: [],
            'ours_default_nolabels': lambda: default_metrics(),
            'ours_TopKAccuracy2': lambda: [TopKAccuracy(2)],
            'ours_PerLabelFScore': lambda: [PerLabelFScore(labels)],
            'ours_FScore': lambda: [FScore()],
            'ours_recommended': lambda: default_metrics(labels, k=2),
            'ours_rec_nolabels': lambda: default_metrics(k=2),
            'keras_F1Score': lambda: [keras.metrics.F1Score(threshold=0.5)],
            'keras_F1Score_BinAcc': lambda: [keras.metrics.F1Score(threshold=0.5), keras.metrics.BinaryAccuracy()]}[name]()

def make_batches(bs, n_labels, n, pool_mb, seed=0):
    "Up to `n` distinct `(targets, probabilities)` batches of the backend, at most `pool_mb` MiB of them."
    import numpy as np
    from keras import ops
    rng = np.random.default_rng(seed)
    k = max(1, min(n, pool_mb * 2**20 // (bs * n_labels * 8)))
    return [(ops.convert_to_tensor((rng.random((bs, n_labels), 'float32') < 0.1).astype('float32')),
             ops.convert_to_tensor(rng.random((bs, n_labels), 'float32'))) for _ in range(k)]

def stepper(backend, mode, mets):
    "`(start, step, finish)`: fresh state, one batch through every metric of `mets` (update then result), wait for the work."
    if backend == 'jax' and mode != 'eager':
        import jax, jax.numpy as jnp
        def one(states, yt, yp):
            states = [m.stateless_update_state(s, yt, yp) for m, s in zip(mets, states)]
            return states, [m.stateless_result(s) for m, s in zip(mets, states)]
        f, st = jax.jit(one, donate_argnums=0), {}
        def start(): st['s'] = [[jnp.zeros_like(v.value) for v in m.variables] for m in mets]
        def step(yt, yp): st['s'], st['r'] = f(st['s'], yt, yp)
        def finish(): jax.block_until_ready((st['s'], st.get('r')))
        return start, step, finish
    def one(yt, yp):
        for m in mets: m.update_state(yt, yp)
        return [m.result() for m in mets]
    if backend == 'tensorflow' and mode != 'eager':
        import tensorflow as tf
        xla = mode == 'xla' or any(d.device_type != 'CPU' for d in tf.config.list_physical_devices())  # Keras' jit_compile='auto'
        one = tf.function(one, reduce_retracing=True, jit_compile=xla)
    from keras import ops
    def start():
        for m in mets: m.reset_state()
    def finish(): [ops.convert_to_numpy(v.value) for m in mets for v in m.variables]
    return start, lambda yt, yp: one(yt, yp), finish

def n_batches_for(bs, n_labels, batches, big_batches): return batches if bs * n_labels < 100_000 else big_batches

def measure_backend(backend, threads, sizes, batches, big_batches, runs, modes, pool_mb):
    "{mode: {'BSxL': {name: seconds per batch}}} for this process's backend; printed as JSON."
    if backend == 'torch':
        import torch; torch.set_num_threads(threads)
    if backend == 'tensorflow':
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads); tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    assert keras.backend.backend() == backend, (keras.backend.backend(), backend)
    out = {}
    for mode in modes:
        if (mode == 'xla' and backend != 'tensorflow') or (mode == 'eager' and backend == 'torch' and 'keras' in modes): continue  # same as 'keras'
        out[mode] = {}
        for bs, L in sizes:
            n_batches = n_batches_for(bs, L, batches, big_batches)
            data = make_batches(bs, L, n_batches, pool_mb)
            steps = {}
            for nm in NAMES:
                mets = make(nm, L)
                for m in mets: m.update_state(*data[0])  # build the state variables
                start, step, finish = steppers = stepper(backend, mode, mets)
                start()
                for i in range(3): step(*data[i % len(data)])  # trace / compile
                finish()
                steps[nm] = steppers
            best = {nm: float('inf') for nm in NAMES}
            for _ in range(runs):
                for nm in NAMES:  # alternate: a load spike hits every contender alike
                    start, step, finish = steps[nm]
                    start(); finish()
                    t0 = time.perf_counter()
                    for i in range(n_batches): step(*data[i % len(data)])
                    finish()
                    best[nm] = min(best[nm], (time.perf_counter() - t0) / n_batches)
            out[mode][f'{bs}x{L}'] = best
    if backend == 'tensorflow' and 'keras' in out:  # name what Keras' 'auto' resolved to
        import tensorflow as tf
        out['keras_xla' if any(d.device_type != 'CPU' for d in tf.config.list_physical_devices()) else 'keras_noxla'] = out.pop('keras')
    return out

def label(backend, mode):
    return {'eager': 'eager', 'xla': 'tf.function(jit_compile=True)', 'keras_noxla': "tf.function(auto: jit_compile=False)",
            'keras_xla': "tf.function(auto: jit_compile=True)"}.get(mode) or {'jax': 'jax.jit', 'torch': 'eager (as Keras)'}[backend]

def table(res, batches, big_batches, runs):
    "The results as text: µs per batch, ratios."
    lines = [f'µs per batch (update_state + result of every metric), fastest of {runs} runs of {batches} batches '
             f'({big_batches} for 100,000 scores or more per batch)',
             'ratio_nolab = ours_rec_nolabels / keras_F1Score_BinAcc (target <= 1.0); ratio_rec = ours_recommended / keras_F1Score_BinAcc '
             '(target <= 2.0); ratio_f1 = ours_FScore / keras_F1Score (target <= 1.0)']
    hdr = f"{'backend':11}{'mode':37}{'thr':>4}{'size':>10}" + ''.join(f'{n:>22}' for n in NAMES) + f"{'ratio_nolab':>12}{'ratio_rec':>11}{'ratio_f1':>10}"
    lines += ['', hdr, '-' * len(hdr)]
    for (backend, threads), r in res.items():
        for mode, by_size in r.items():
            for size, t in by_size.items():
                us = {n: t[n] * 1e6 for n in NAMES}
                lines.append(f'{backend:11}{label(backend, mode):37}{threads:>4}{size:>10}' + ''.join(f'{us[n]:22.1f}' for n in NAMES)
                             + f"{t['ours_rec_nolabels'] / t['keras_F1Score_BinAcc']:12.2f}{t['ours_recommended'] / t['keras_F1Score_BinAcc']:11.2f}"
                             + f"{t['ours_FScore'] / t['keras_F1Score']:10.2f}")
    return '\n'.join(lines)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--backends', default=','.join(BACKENDS))
    ap.add_argument('--threads', default='1,2', help='thread counts, each in its own process')
    ap.add_argument('--sizes', default=','.join(f'{b}x{l}' for b, l in SIZES), help='batch size x labels')
    ap.add_argument('--batches', type=int, default=2000, help='batches per run')
    ap.add_argument('--big-batches', type=int, default=200, help='batches per run for sizes of 100,000 scores or more')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--modes', default='keras', help="'keras' (as fit compiles), 'xla' (TF jit_compile=True), 'eager'")
    ap.add_argument('--pool-mb', type=int, default=128, help='memory of distinct batches, cycled beyond')
    ap.add_argument('--quick', action='store_true', help='300 batches (30 big), 3 runs')
    ap.add_argument('--json', action='store_true', help='print one JSON object instead of the table')
    ap.add_argument('--one', nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.quick: a.batches, a.big_batches, a.runs = 300, 30, 3
    sizes = [tuple(map(int, s.split('x'))) for s in a.sizes.split(',')]
    modes = a.modes.split(',')
    if a.one: return print(json.dumps(measure_backend(a.one[0], int(a.one[1]), sizes, a.batches, a.big_batches, a.runs, modes, a.pool_mb)))
    res = {}
    for backend in a.backends.split(','):
        for threads in map(int, a.threads.split(',')):
            cmd = [sys.executable, __file__, '--one', backend, str(threads), '--sizes', a.sizes, '--batches', str(a.batches), '--big-batches', str(a.big_batches),
                   '--runs', str(a.runs), '--modes', a.modes, '--pool-mb', str(a.pool_mb)]
            p = subprocess.run(cmd, env=thread_env(backend, threads), capture_output=True, text=True)
            if p.returncode: sys.exit(f'{backend} with {threads} thread(s) failed:\n{p.stderr}')
            res[backend, threads] = json.loads(p.stdout.strip().splitlines()[-1])
            if not a.json: print(f'{backend}, {threads} thread(s): done', file=sys.stderr)
    if a.json: return print(json.dumps({f'{b}/{t}': r for (b, t), r in res.items()}))
    print(table(res, a.batches, a.big_batches, a.runs))

if __name__ == '__main__': main()
