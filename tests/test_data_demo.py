"The dataset builder, the loader, the shipped files in the wheel, and the demo command end to end."
import glob, json, subprocess, sys, zipfile, importlib.util
from pathlib import Path
import pandas as pd, pytest, torch
from fastai_multilabel.data import load_debtags, debtags_info, tokens, hash_tokens, multi_hot

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('build_debtags', ROOT/'scripts'/'build_debtags.py')
bd = importlib.util.module_from_spec(spec); spec.loader.exec_module(bd)

INDEX = """Package: zeta
Version: 1.0
Depends: libc6 (>= 2.34), python3:any | python3-minimal, libfoo1 [amd64]
Description: A tool for zeta
Section: utils
Tag: role::program, interface::commandline,
 scope::utility

Package: alpha
Depends: libc6
Description: A tool for zeta
Section: utils
Tag: role::program, interface::commandline

Package: beta
Description: A library
Section: libs
Tag: role::shared-lib

Package: gamma
Description: No tags here
Section: misc

Package: delta
Description: A rare thing
Section: misc
Tag: special::rare
"""

def test_builder_on_a_small_index():
    df, keep, n_all, counts = bd.build(INDEX, n_tags=3)
    assert n_all == 4 and keep == ['interface::commandline', 'role::program', 'role::shared-lib']
    assert list(df.package) == ['alpha', 'beta']   # zeta repeats alpha's description; delta keeps no tag; gamma has none
    assert df.loc[0, 'tags'] == 'role::program interface::commandline' and df.loc[0, 'depends'] == 'libc6'
    assert bd.dep_names('libc6 (>= 2.34), python3:any | python3-minimal, libfoo1 [amd64]') == ['libc6', 'libfoo1', 'python3', 'python3-minimal']
    assert set(df.split) <= {'train', 'valid', 'test'} and bd.split_of('alpha') == bd.split_of('alpha')

@pytest.mark.skipif(bd.main_index() is None, reason="no apt Packages index on this machine")
def test_builder_on_a_slice_of_the_real_index():
    text = bd.read_index(bd.main_index())
    df, keep, n_all, _ = bd.build('\n\n'.join(text.split('\n\n')[:3000]), n_tags=20)
    assert len(keep) == 20 and 500 < len(df) <= n_all <= 3000
    assert df.tags.str.split().map(lambda ts: set(ts) <= set(keep)).all() and df.description.is_unique

def test_loader_and_shipped_provenance():
    df, vocab = load_debtags()
    info = debtags_info()
    assert len(vocab) == 50 and len(df) == info['n_rows'] > 25_000 and info['release']['Codename'] == 'bookworm'
    assert df.split.value_counts().to_dict() == info['split_sizes']
    df10, v10 = load_debtags(10)
    assert v10 == vocab[:10] and df10.tags.str.split().map(lambda ts: set(ts) <= set(v10)).all()
    with pytest.raises(ValueError, match=r"Expected `n_labels` to be an int in \[1, 50\], but got 0"): load_debtags(0)
    y = multi_hot(df.tags.head(50), vocab)
    assert y.sum().item() == df.tags.head(50).str.split().map(len).sum()
    assert hash_tokens(tokens(df.head(5))).shape == (5, 48)

def test_wheel_ships_the_data(tmp_path):
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', str(tmp_path), str(ROOT)], check=True, capture_output=True)
    names = zipfile.ZipFile(next(tmp_path.glob('*.whl'))).namelist()
    assert 'fastai_multilabel/assets/debtags.csv.gz' in names and 'fastai_multilabel/assets/debtags.json' in names
    assert 'fastai_multilabel/callback/threshold.py' in names

def run(*args, cwd=None):
    return subprocess.run([sys.executable, '-m', 'fastai_multilabel', *args], capture_output=True, text=True, cwd=cwd, timeout=600)

def test_demo_end_to_end(tmp_path):
    r = run('demo', '--epochs', '1', '--labels', '8', '--out', str(tmp_path/'out'))
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in (tmp_path/'out').iterdir())
    assert files == ['confusion.png', 'pr_curves.png', 'report.csv', 'scores.csv', 'threshold_curves.png']
    rep = pd.read_csv(tmp_path/'out'/'report.csv', index_col=0)
    assert len(rep) == 11 and list(rep.index[-3:]) == ['micro', 'macro', 'weighted'] and rep.loc['macro', 'f1'] > 0.3
    assert 'f1_macro_t0p5' in r.stdout and 'tuned_f1_perlabel' in r.stdout and 'Test split scores' in r.stdout
    assert (tmp_path/'out'/'pr_curves.png').read_bytes()[:4] == b'\x89PNG' == (tmp_path/'out'/'confusion.png').read_bytes()[:4]
    assert 'Most confused tag pairs' in r.stdout and 'predicted' in r.stdout.split('Most confused tag pairs')[1]

@pytest.mark.parametrize('args,msg', [(['--epochs', '0'], 'argument --epochs: expected at least 1, got 0'),
                                      (['--labels', '99'], 'argument --labels: expected at most 50, got 99'),
                                      (['--beta', '0'], 'argument --beta: expected a number > 0, got 0'),
                                      (['--out', '/no/such/parent/out'], "argument --out: the parent folder '/no/such/parent' does not exist"),
                                      (['--epochs', 'many'], "argument --epochs: expected a whole number, got 'many'"),
                                      (['--bogus'], 'unrecognized arguments: --bogus')])
def test_demo_bad_options_give_one_line(args, msg):
    r = run('demo', *args)
    assert r.returncode == 2 and r.stdout == '' and 'Traceback' not in r.stderr
    assert r.stderr == f'fastai-multilabel demo: error: {msg}\n' or (args == ['--bogus'] and r.stderr.strip().endswith(msg) and r.stderr.count('\n') == 1)
