"""How well a model's categorical code names the dataset's classes (InfoGAN, Chen et al.
2016): for each code value k, `per_code` = max(n // K, 1) samples are drawn with the code
fixed to k (the model's `sample_with_codes`, README "Models with codes"; the other codes
and the noise from the prior, a generator seeded 0) and labelled by the dataset's
classifier. Code values are matched one-to-one to classes by the Hungarian algorithm
(scipy's linear_sum_assignment) on the counts, maximizing the matched samples:

- code_accuracy: the share of samples whose class is their code value's match (the paper's
  "5% error on MNIST" is 0.95);
- code_mi_lb: H(c) - E[CE] in nats, with q(c | x) = the classifier's probability of c's
  matched class: a variational lower bound on I(c; x) (Barber & Agakov), log K at most;
  given only when every code value has a class (K <= classes);
- traversal_rows_one_class / traversal_row_classes: of the report's traversal grid
  (bench.traversal: a row per code value, S columns), the rows the classifier reads as one
  class in every column, and how many classes those rows show (K and K when every row is
  one class and no two rows share one: "one digit per row"). One fixed noise draw, as the
  grid: it says what the picture shows, not an average.

Models without `sample_with_codes`, or with no categorical code, skip all four.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bench.metrics import register_metric
from bench.scoring import ScoringContext


def match_codes(codes: np.ndarray, classes: np.ndarray, k: int, num_classes: int) -> np.ndarray:
    """match[c] = the class matched to code value c (-1: none), maximizing the samples
    whose class is their code's match."""
    from scipy.optimize import linear_sum_assignment

    counts = np.zeros((k, num_classes))
    np.add.at(counts, (codes, classes), 1.0)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    match = np.full(k, -1)
    match[rows] = cols
    return match


def code_accuracy(codes: np.ndarray, classes: np.ndarray, match: np.ndarray) -> float:
    return float(np.mean(match[codes] == classes))


def traversal_rows(labels: np.ndarray) -> tuple[int, int]:
    """(rows with one class in every column, distinct classes of those rows) of a grid's
    classifier labels, shape (rows, columns)."""
    one_class = [int(row[0]) for row in labels if (row == row[0]).all()]
    return len(one_class), len(set(one_class))


def code_mi_lower_bound(codes: np.ndarray, log_probs: np.ndarray, match: np.ndarray) -> float:
    """H(c) - E[-log q(c | x)] in nats, q the classifier's log-probabilities (n, classes)
    of each code's matched class; codes uniform over the code values drawn."""
    h = math.log(len(np.unique(codes)))
    return float(h + np.mean(log_probs[np.arange(len(codes)), match[codes]]))


@register_metric(
    "code_accuracy",
    columns={
        "code_accuracy_": ("higher", 41),
        "code_mi_lb_": ("higher", 41.1),
        "traversal_rows_one_class_": ("higher", 41.2),
        "traversal_row_classes_": ("higher", 41.3),
    },
    needs={"images", "model", "labels"},
)
def score_code_accuracy(ctx: ScoringContext) -> dict[str, float]:
    """Accuracy of a model's categorical code as a class label (samples per code value,
    the dataset classifier's labels, codes matched to classes by the Hungarian algorithm)
    and the mutual-information lower bound H(c) - E[CE] in nats, and how many of the
    traversal grid's rows show one class; models without categorical codes skip it."""
    from bench.features.classifier import load_classifier
    from bench.traversal import STEPS, code_traversal

    k = int(getattr(ctx.model, "categorical_codes", 0) or 0)
    if k == 0 or not hasattr(ctx.model, "sample_with_codes"):
        return {}
    per_code = max(ctx.n // k, 1)
    codes = torch.arange(k).repeat_interleave(per_code)
    images = ctx.model.sample_with_codes(
        len(codes),
        categorical=codes,
        generator=torch.Generator().manual_seed(0),
        batch_size=ctx.batch_size,
    )
    classifier = load_classifier(ctx.data, ctx.device)
    logits = classifier.logits(images)
    log_probs = torch.from_numpy(logits).double().log_softmax(1).numpy()
    codes = codes.numpy()
    match = match_codes(codes, log_probs.argmax(1), k, ctx.data.num_classes)
    n = len(codes)
    out = {f"code_accuracy_n{n}": code_accuracy(codes, log_probs.argmax(1), match)}
    if (match >= 0).all():
        out[f"code_mi_lb_n{n}"] = code_mi_lower_bound(codes, log_probs, match)
    grid_labels = classifier.predict(code_traversal(ctx.model, STEPS)).reshape(k, STEPS)
    rows, classes = traversal_rows(grid_labels)
    out[f"traversal_rows_one_class_s{STEPS}"] = float(rows)
    out[f"traversal_row_classes_s{STEPS}"] = float(classes)
    return out
