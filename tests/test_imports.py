"The package must not import torchvision or fastai.vision (their CUDA wheel breaks beside the CPU torch)."
import subprocess, sys

def test_no_vision_imports():
    code = ("import sys, fastai_multilabel.all as a; "
            "bad = [m for m in sys.modules if m.split('.')[0] == 'torchvision' or m.startswith('fastai.vision')]; print(bad)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == '[]'

def test_all_exports_public_names():
    import fastai_multilabel.all as a
    for n in ['ThresholdAccuracy', 'SubsetAccuracy', 'TopKAccuracy', 'PrecisionAtK', 'RecallAtK', 'FScore', 'PerLabelRecall',
              'PerLabelPrecision', 'PerLabelFScore', 'default_metrics', 'check_metric_names', 'LabelCounts', 'SampleAverage']:
        assert hasattr(a, n), n

def test_all_is_the_public_surface():
    "`all` holds user-facing names only (metrics, losses, callbacks, one-shot scores, reports); plumbing stays in its module."
    import fastai_multilabel.all as a
    assert len(a.__all__) == len(set(a.__all__)) <= 60
    assert all(hasattr(a, n) for n in a.__all__)
    for n in ['check_thresh', 'check_preds_targs', 'sorted_bits', 'hist_codes', 'tokens', 'parser', 'main', 'run_demo', 'BagOfTokens',
              'metric_name', 'thresh_tag', 'warn_tracker_name', 'MultilabelMetric', 'BufferedUpdate',
              'load_debtags', 'debtags_info', 'debtags_dls', 'multi_hot', 'HashTokens']:
        assert n not in a.__all__, n
        assert not hasattr(a, n), n  # not imported into `all` at all
    from fastai_multilabel.core import check_thresh
    from fastai_multilabel.data import load_debtags, debtags_info, debtags_dls  # the demo's data lives in its module
    from fastai_multilabel.thresholds import sorted_bits, hist_codes
    from fastai_multilabel.demo import parser, main, BagOfTokens

def test_names_module_is_plain_python():
    "Naming is shared with the Keras adapter, which must not import fastai: `names` imports neither fastai nor torch."
    code = "import sys, fastai_multilabel.names; print([m for m in sys.modules if m.split('.')[0] in ('torch', 'fastai')])"
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip() == '[]'
