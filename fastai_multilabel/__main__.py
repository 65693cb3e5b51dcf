import sys
from fastai_multilabel.cli import main

if __name__ == '__main__': sys.exit(main())
