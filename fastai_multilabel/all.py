"Every public name of fastai_multilabel: `from fastai_multilabel.all import *`."
from .core import *
from .functional import *
from .thresholds import *
from .streaming import *
from .losses import *
from .metrics import *
from .callback.threshold import *
from .report import *
from .data import *
from .demo import *
