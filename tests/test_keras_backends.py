"The Keras adapter on each Keras 3 backend, each in its own process (a process can hold one backend): `keras_backend_check.py`."
import json, os, pathlib, subprocess, sys, time, pytest

SCRIPT = pathlib.Path(__file__).with_name('keras_backend_check.py')

@pytest.mark.parametrize('backend', ['torch', 'jax', 'tensorflow'])
def test_keras_backend(backend):
    "Fit, History vs scikit-learn, CSVLogger, ModelCheckpoint, EarlyStopping, ThresholdSearch, with_decisions, ranking metrics; no torch imported under JAX/TF."
    env = {**os.environ, 'KERAS_BACKEND': backend, 'TF_CPP_MIN_LOG_LEVEL': '2'}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    secs = time.perf_counter() - t0
    assert p.returncode == 0, f'KERAS_BACKEND={backend} failed (exit {p.returncode}) after {secs:.0f} s\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}'
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res['backend'] == backend, res
    print(f'{backend}: {secs:.1f} s', res)
