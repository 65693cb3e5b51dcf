"Every public name of fastai_multilabel: `from fastai_multilabel.all import *`."
from .core import *
from .functional import *
from .streaming import *
from .metrics import *
