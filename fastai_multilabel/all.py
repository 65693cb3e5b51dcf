"""The public names of fastai_multilabel: `from fastai_multilabel.all import *`.

User-facing metrics, losses, callbacks, one-shot scores, reports and the building blocks for plain PyTorch loops. Everything
else (input checks, naming helpers, bit tricks, the demo and its data: `fastai_multilabel.data.load_debtags`, `debtags_dls`,
`debtags_info`) stays importable from its module."""
from .core import AVERAGES, CRITERIA
from .functional import (multilabel_fbeta_score, multilabel_precision, multilabel_recall, multilabel_accuracy,
                         multilabel_subset_accuracy, multilabel_topk_accuracy, multilabel_precision_at_k, multilabel_recall_at_k,
                         label_counts, score_from_counts, topk_mask)
from .thresholds import best_thresholds, best_thresholds_binned, binned_error_bound, constrained_thresholds
from .ranking import multilabel_average_precision, multilabel_roc_auc, paper_scores, ranking_error_bound
from .streaming import LabelCounts, SampleAverage, MultilabelStats, ThresholdHistogram
from .losses import MultiLabelBCELoss
from .metrics import (ThresholdAccuracy, SubsetAccuracy, FScore, Jaccard, HammingLoss, TopKAccuracy, PrecisionAtK, RecallAtK, PerLabelRecall,
                      PerLabelPrecision, PerLabelFScore, default_metrics, check_metric_names, AveragePrecision, RocAuc, PerLabelAveragePrecision,
                      PerLabelRocAuc, LabelRankingAveragePrecision, CoverageError, RankingLoss, paper_metrics, shared_passes)
from .callback.threshold import ThresholdSearch  # also patches `Learner.tune_thresholds`
from .report import report_from_preds, label_report, plot_threshold_curves, plot_pr_curves
from .interpret import MultiLabelInterpretation  # also patches `Learner.interpret_multilabel`

__all__ = ['AVERAGES', 'CRITERIA',
           'multilabel_fbeta_score', 'multilabel_precision', 'multilabel_recall', 'multilabel_accuracy', 'multilabel_subset_accuracy',
           'multilabel_topk_accuracy', 'multilabel_precision_at_k', 'multilabel_recall_at_k', 'label_counts', 'score_from_counts', 'topk_mask',
           'best_thresholds', 'best_thresholds_binned', 'binned_error_bound', 'constrained_thresholds',
           'multilabel_average_precision', 'multilabel_roc_auc', 'paper_scores', 'ranking_error_bound',
           'LabelCounts', 'SampleAverage', 'MultilabelStats', 'ThresholdHistogram',
           'MultiLabelBCELoss',
           'ThresholdAccuracy', 'SubsetAccuracy', 'FScore', 'Jaccard', 'HammingLoss', 'TopKAccuracy', 'PrecisionAtK', 'RecallAtK', 'PerLabelRecall',
           'PerLabelPrecision', 'PerLabelFScore', 'default_metrics', 'check_metric_names',
           'AveragePrecision', 'RocAuc', 'PerLabelAveragePrecision', 'PerLabelRocAuc', 'LabelRankingAveragePrecision', 'CoverageError',
           'RankingLoss', 'paper_metrics', 'shared_passes',
           'ThresholdSearch', 'MultiLabelInterpretation', 'report_from_preds', 'label_report', 'plot_threshold_curves', 'plot_pr_curves']
