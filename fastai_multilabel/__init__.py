"""Streaming, clearly named multi-label metrics, top-k accuracy and threshold search for fastai

Modules:

- `fastai_multilabel.all`: The public names of fastai_multilabel: `from fastai_multilabel.all import *`."""

__version__ = "0.1.0"
