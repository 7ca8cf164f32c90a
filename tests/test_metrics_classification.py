"""Per-class precision, recall and F1 and the confusion matrix, against a case worked by hand."""

from fractions import Fraction as F

import numpy as np
import pytest

from digitlab.metrics import classification_summary

# Six digits of three classes. Rows of the confusion matrix are true classes,
# columns predicted ones:
#            pred 0  pred 1  pred 2
#   true 0      1       2       0
#   true 1      0       1       1
#   true 2      0       0       1
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 1, 1, 1, 2, 2]
CONFUSION = [[1, 2, 0], [0, 1, 1], [0, 0, 1]]
# precision = diagonal / column sum; recall = diagonal / row sum; F1 = 2PR / (P + R).
PRECISION = {"0": F(1, 1), "1": F(1, 3), "2": F(1, 2)}
RECALL = {"0": F(1, 3), "1": F(1, 2), "2": F(1, 1)}
F1 = {"0": F(1, 2), "1": F(2, 5), "2": F(2, 3)}
SUPPORT = {"0": 3, "1": 2, "2": 1}


def test_per_class_scores_and_confusion_matrix_match_the_hand_count():
    s = classification_summary(Y_TRUE, Y_PRED, labels=(0, 1, 2))
    assert s["confusion_matrix"] == CONFUSION
    assert s["accuracy"] == 0.5 and s["n"] == 6
    for label in ("0", "1", "2"):
        row = s["per_class"][label]
        assert row["precision"] == pytest.approx(float(PRECISION[label]), abs=1e-15), label
        assert row["recall"] == pytest.approx(float(RECALL[label]), abs=1e-15), label
        assert row["f1"] == pytest.approx(float(F1[label]), abs=1e-15), label
        assert row["support"] == SUPPORT[label], label
    assert s["macro_f1"] == pytest.approx(float(sum(F1.values()) / 3), abs=1e-15)


def test_swapping_truth_and_prediction_transposes_the_matrix_and_swaps_the_scores():
    # The case is asymmetric, so a summary that mixed up its arguments would fail above;
    # here the mix-up is made on purpose and must move every number where expected.
    s = classification_summary(Y_PRED, Y_TRUE, labels=(0, 1, 2))
    assert s["confusion_matrix"] == np.array(CONFUSION).T.tolist()
    assert s["per_class"]["0"]["precision"] == pytest.approx(float(RECALL["0"]))
    assert s["per_class"]["0"]["recall"] == pytest.approx(float(PRECISION["0"]))
    assert [s["per_class"][k]["support"] for k in "012"] == [1, 3, 2]


def test_every_digit_gets_a_row_even_when_absent():
    s = classification_summary([3, 3, 7], [3, 7, 7])
    assert list(s["per_class"]) == [str(d) for d in range(10)]
    assert s["per_class"]["5"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    cm = np.array(s["confusion_matrix"])
    assert cm.shape == (10, 10) and cm[3, 3] == 1 and cm[3, 7] == 1 and cm[7, 7] == 1
    assert cm.sum() == 3
