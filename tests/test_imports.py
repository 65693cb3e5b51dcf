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
