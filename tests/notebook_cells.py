"""What a notebook's cells define, read from its py:percent twin without running it."""

from __future__ import annotations

import ast

import jupytext
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitlab import paths


def notebook_definitions(name: str) -> dict:
    """The functions and classes the code cells of notebook ``name`` define, and nothing
    else of those cells (no data loaded, nothing trained): what a test compares with the
    package's copy, or uses to rebuild what the notebook saved."""
    namespace = {"np": np, "torch": torch, "nn": nn, "F": F}
    for cell in jupytext.read(paths.notebooks_dir() / f"{name}.py").cells:
        if cell.cell_type != "code" or cell.source.lstrip().startswith(("%", "!")):
            continue
        tree = ast.parse(cell.source)
        tree.body = [node for node in tree.body
                     if isinstance(node, ast.FunctionDef | ast.ClassDef)]
        exec(compile(tree, name, "exec"), namespace)
    return namespace
