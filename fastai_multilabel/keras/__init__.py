"""Keras 3 metrics, threshold search and decision layer for multi-label models, on the torch, JAX and TensorFlow backends:
`from fastai_multilabel.keras import *`.

Written by hand; nbdev exports the four modules from the notebooks `07_keras` (`metrics`: the shared machinery, the
thresholded, top-k and per-label metrics and the recommended set), `07b_keras.ranking` (`ranking`: average precision,
ROC AUC, the rankings of each sample and the papers' table), `07c_keras.callbacks` (`callbacks`: `ThresholdSearch` and
its histogram) and `07d_keras.layers` (`layers`: the decision rule shipped inside a model)."""
from .metrics import *
from .ranking import *
from .callbacks import *
from .layers import *
from . import metrics, ranking, callbacks, layers

__all__ = [*metrics.__all__, *ranking.__all__, *callbacks.__all__, *layers.__all__]
