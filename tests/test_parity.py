"""The two adapters against one description (`fastai_multilabel.specs`): every public metric, callback and set exists on both
sides with the spec's arguments (in each side's spelling), the same defaults (but the logit convention), the spec's docstring,
and the same names and columns for the same arguments."""
import os; os.environ.setdefault('KERAS_BACKEND', 'torch')
import inspect, math
import numpy as np, pytest, torch
import fastai_multilabel.all as A
import fastai_multilabel.keras as K
from fastai_multilabel.callback.threshold import ThresholdSearch as FastaiSearch
from fastai_multilabel.specs import SPECS, SPELLING

LABELS = ['cat', 'dog', 'bird']
# defaults that differ by design: a fastai model ends in a logit (sigmoid=True), a Keras one in a sigmoid (from_logits=False);
# the fastai search is exact by default (it sees the predictions), the Keras one reads a histogram (a callback sees none)
OWN_DEFAULTS = {('*', 'sigmoid'), ('ThresholdSearch', 'n_bins')}

def params(obj):
    f = obj.__init__ if inspect.isclass(obj) else obj
    return {n: p.default for n,p in inspect.signature(f).parameters.items() if n not in ('self', 'name', 'dtype', 'kwargs')}

@pytest.mark.parametrize('name', list(SPECS))
def test_both_adapters_take_the_specs_arguments(name):
    spec = SPECS[name]
    for adapter,mod in (('fastai', A), ('keras', K)):
        assert name in mod.__all__, f'{name} is missing from the {adapter} adapter'
        got = params(getattr(mod, name))
        assert sorted(got) == sorted(spec.args_of(adapter)), f'{adapter} {name}{tuple(got)}: the spec says {spec.args_of(adapter)}'
    fp,kp = params(getattr(A, name)),params(getattr(K, name))
    for a in spec.args:
        if ('*', a) in OWN_DEFAULTS or (name, a) in OWN_DEFAULTS: continue
        f,k = fp[a],kp[SPELLING.get(a, a)]
        assert f == k or (isinstance(f, float) and math.isnan(f) and math.isnan(k)), f'{name}({a}=): fastai default {f!r}, Keras {k!r}'
    assert fp.get('sigmoid', True) is True and kp.get('from_logits', False) is False  # each side's convention

@pytest.mark.parametrize('name', list(SPECS))
def test_both_adapters_show_the_specs_description(name):
    assert A.__dict__[name].__doc__ == SPECS[name].doc and K.__dict__[name].__doc__ == SPECS[name].doc

def fastai_names(obj):
    if isinstance(obj, FastaiSearch): return [c.name for c in obj.columns]
    return [m.name for m in obj] if hasattr(obj, '__iter__') else [obj.name]

def keras_names(obj):
    if isinstance(obj, K.ThresholdSearch): return [obj.score_name[4:], obj.thresh_name[4:]]  # without Keras' `val_`
    return [n for m in (obj if isinstance(obj, list) else [obj]) for n in (getattr(m, 'columns', None) or [m.name])]

VARIANTS = {'defaults': {},
            'args': dict(labels=LABELS, thresh=.3, beta=2., zero_division=1., k=3, criteria='overlap', n_bins=256, ignore_index=-1,
                         per_label=True, metric='fbeta', average='micro'),
            'more': dict(labels=LABELS, thresh='tuned', beta=.5, zero_division=float('nan'), k=1, criteria='exact_match', average='macro',
                         n_bins=None, min_precision=.9),
            'accuracy': dict(labels=LABELS, metric='accuracy', average='weighted', min_recall=.8, n_bins=None),
            # one bad argument each: both sides refuse it with the same message
            **{f'bad_{a}': {a: v} for a,v in dict(thresh=1.5, k=0, n_bins=0, beta=-1., zero_division=.5, average='none', labels='cat',
                                                   ignore_index='x', criteria='all', metric='f1', min_precision=2., min_pos=-1).items()}}
NO_EXACT = {'AveragePrecision', 'RocAuc', 'PerLabelAveragePrecision', 'PerLabelRocAuc', 'paper_metrics'}  # Keras: binned only

@pytest.mark.parametrize('variant', list(VARIANTS))
@pytest.mark.parametrize('name', list(SPECS))
def test_both_adapters_name_their_columns_alike(name, variant):
    spec,kw = SPECS[name],VARIANTS[variant]
    kw = {a: v for a,v in kw.items() if a in spec.args}
    if 'labels' in spec.args and 'labels' not in kw and name.startswith('PerLabel'): kw['labels'] = LABELS
    if name in NO_EXACT and kw.get('n_bins', 1) is None: kw.pop('n_bins')
    if name == 'ThresholdSearch':
        if kw.get('metric') == 'accuracy' or kw.get('average') not in (None, 'micro', 'macro'): kw.pop('average', None)
        if kw.get('metric') == 'accuracy': kw.pop('min_recall', None)
    kk = {SPELLING.get(a, a): v for a,v in kw.items()}
    if name == 'ThresholdSearch':  # the fastai default: exact, which a Keras search does on its `validation_data`
        kk.setdefault('n_bins', None)
        if kk['n_bins'] is None: kk['validation_data'] = (np.zeros((1, 3)), np.zeros((1, 3)))
    try: f = getattr(A, name)(**kw)
    except (ValueError, TypeError) as e:  # what one side refuses, the other must refuse too, with the same words
        with pytest.raises(type(e)) as k: getattr(K, name)(**kk)
        assert str(k.value) == str(e)
        return
    assert keras_names(getattr(K, name)(**kk)) == fastai_names(f)
