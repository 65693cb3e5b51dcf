"Top-k metrics against values computed by hand and by a brute-force set implementation."
import itertools, pytest, torch
from hypothesis import given, settings, strategies as st
from fastai_multilabel.all import *
from helpers import feed

SCORES = torch.tensor([[.9, .8, .1, .0],   # top-2 {0,1}
                       [.1, .7, .6, .2],   # top-2 {1,2}
                       [.3, .2, .1, .4]])  # top-2 {0,3}
TRUTH = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0]])

@pytest.mark.parametrize('criteria,exp', [('hamming', (1 + .75 + 0) / 3), ('exact_match', 1/3), ('overlap', 2/3),
                                          ('contain', 2/3), ('belong', 1/3)])
def test_top2_by_hand(criteria, exp):
    assert feed(TopKAccuracy(2, criteria), SCORES, TRUTH, bs=2) == pytest.approx(exp)

def test_precision_recall_at_k_by_hand():
    assert feed(PrecisionAtK(2), SCORES, TRUTH) == pytest.approx((1 + .5 + 0) / 3)
    assert feed(RecallAtK(2), SCORES, TRUTH) == pytest.approx((1 + 1 + 0) / 3)
    assert feed(PrecisionAtK(1), SCORES, TRUTH) == pytest.approx((1 + 1 + 0) / 3)
    assert feed(RecallAtK(1), SCORES, TRUTH) == pytest.approx((.5 + 1 + 0) / 3)

def brute(scores, truth, k, criteria):
    res = []
    for s, t in zip(scores.tolist(), truth.tolist()):
        top = set(sorted(range(len(s)), key=lambda j: -s[j])[:k]); true = {j for j, v in enumerate(t) if v}
        res.append({'hamming': sum((j in top) == (j in true) for j in range(len(s))) / len(s),
                    'exact_match': top == true, 'overlap': bool(top & true), 'contain': true <= top,
                    'belong': top <= true, 'p': len(top & true) / k, 'r': len(top & true) / len(true) if true else 0.}[criteria])
    return sum(res) / len(res)

@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), n_labels=st.integers(1, 8), data=st.data(), seed=st.integers(0, 10**6))
def test_topk_hypothesis(n, n_labels, data, seed):
    k = data.draw(st.integers(1, n_labels))
    g = torch.Generator().manual_seed(seed)
    scores = torch.randperm(n * n_labels, generator=g).float().view(n, n_labels)  # distinct: no ties
    truth = (torch.rand(n, n_labels, generator=g) < 0.4).int()
    for c in CRITERIA: assert feed(TopKAccuracy(k, c), scores, truth, 7) == pytest.approx(brute(scores, truth, k, c))
    assert feed(PrecisionAtK(k), scores, truth, 7) == pytest.approx(brute(scores, truth, k, 'p'))
    assert feed(RecallAtK(k), scores, truth, 7) == pytest.approx(brute(scores, truth, k, 'r'))

def test_topk_names():
    assert [TopKAccuracy(2, c).name for c in CRITERIA] == ['top2_accuracy', 'top2_accuracy_exact_match', 'top2_accuracy_overlap',
                                                           'top2_accuracy_contain', 'top2_accuracy_belong']
    assert (PrecisionAtK(3).name, RecallAtK(3).name) == ('precision_at3', 'recall_at3')
