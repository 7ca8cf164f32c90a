import numpy as np
from sklearn.metrics import f1_score

from digitlab.metrics import classification_summary


def test_summary_matches_scikit_learn_and_counts_every_sample():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 10, 300))
    s = classification_summary(y_true, y_pred)
    assert s["accuracy"] == np.mean(y_true == y_pred)
    assert np.isclose(s["macro_f1"], f1_score(y_true, y_pred, average="macro"))
    cm = np.array(s["confusion_matrix"])
    assert cm.sum() == 300 and np.trace(cm) == np.sum(y_true == y_pred)
