import sys
from fastai_multilabel.demo import main

if __name__ == '__main__': sys.exit(main())
