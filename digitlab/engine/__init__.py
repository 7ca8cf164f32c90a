"""The one way a torch model is trained, evaluated, cross-validated and saved.

A run is a function of (network, recipe, data, seed, device) that returns
(model, history, metrics): :class:`NetworkSpec` names the architecture,
:class:`Recipe` says how to train it, :func:`train` / :func:`run` do it with the
one loop :func:`fit`, :func:`evaluate` scores it, :func:`cross_validate` runs
stratified k-fold cross-validation, and :func:`save_checkpoint` /
:func:`load_checkpoint` store it for any device.
"""

from digitlab.engine.checkpoint import load_checkpoint, save_checkpoint
from digitlab.engine.cv import cross_validate
from digitlab.engine.fit import History, fit
from digitlab.engine.networks import Ensemble, NetworkSpec, count_parameters
from digitlab.engine.predict import evaluate, predict, predict_logits, predict_proba
from digitlab.engine.recipe import Recipe
from digitlab.engine.runner import RunResult, run, train

__all__ = ["Ensemble", "History", "NetworkSpec", "Recipe", "count_parameters", "cross_validate",
           "evaluate", "fit", "load_checkpoint", "predict", "predict_logits", "predict_proba",
           "run", "RunResult", "save_checkpoint", "train"]
