"""Typed settings from text: ``FIELD=VALUE`` strings turned into a dataclass's fields or a
function's keyword arguments, typed from their type hints.

This is what lets a script take ``--set momentum=0.95`` for any field of a
:class:`~digitlab.engine.recipe.Recipe`, or ``--option width=24`` for any option
of a network builder, without declaring each one again. The syntax of a value:

- ``int``, ``float``: a number (``10``, ``0.003``, ``5e-4``);
- ``bool``: ``true`` or ``false``;
- ``str``: the text itself (fields with choices list them when it is not one);
- an optional field (``float | None``): ``none`` (or ``None``) for None, else the type;
- a tuple or sequence of numbers: comma-separated (``16,32``) or a JSON list (``[16, 32]``);
- a mapping (``augment_params``): a JSON object, ``{"degrees": 15, "scale": [0.85, 1.15]}``,
  whose keys replace those of the current value (lists become tuples).

Every mistake is a :class:`~digitlab.errors.UserError` of one sentence that names the
setting and what it accepts.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from digitlab.errors import UserError

NONE_WORDS = ("none", "None")
TRUE_WORDS, FALSE_WORDS = ("true", "True"), ("false", "False")


def split_assignment(text: str, what: str = "setting") -> tuple[str, str]:
    """``"name=value"`` -> ``("name", "value")``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise UserError(f"{what} {text!r} is not NAME=VALUE, e.g. epochs=5.")
    return name.strip(), value.strip()


def _optional(hint) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (hint, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) < len(typing.get_args(hint)):
            return (args[0] if len(args) == 1 else Any), True
    return hint, False


def describe(hint) -> str:
    """What a value of type ``hint`` is written as, for messages and help tables."""
    inner, optional = _optional(hint)
    origin = typing.get_origin(inner) or inner
    if inner is bool:
        text = "true/false"
    elif inner is int:
        text = "integer"
    elif inner is float:
        text = "number"
    elif inner is str:
        text = "text"
    elif origin in (tuple, list, Sequence) or (isinstance(origin, type)
                                                and issubclass(origin, (tuple, list))):
        text = "comma-separated list"
    elif origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        text = "JSON object"
    else:
        text = "value"
    return f"{text} or none" if optional else text


def convert(text: str, hint, name: str, *, current: Any = None,
            choices: Sequence[str] | None = None) -> Any:
    """``text`` as a value of type ``hint`` for the setting ``name``; ``current`` is the
    value it replaces (a mapping is updated, not replaced)."""
    inner, optional = _optional(hint)
    if optional and text in NONE_WORDS:
        return None

    def bad(expected: str):
        return UserError(f"{name}={text!r} is not valid: {name} takes {expected}.")

    if inner is bool:
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        raise bad("true or false" + (" or none" if optional else ""))
    if inner is int:
        try:
            return int(text)
        except ValueError:
            raise bad("a whole number" + (" or none" if optional else "")) from None
    if inner is float:
        try:
            value = float(text)
        except ValueError:
            raise bad("a number" + (" or none" if optional else "")) from None
        if not math.isfinite(value):
            raise bad("a finite number")
        return value
    if inner is str:
        if choices is not None and text not in choices:
            raise bad("one of " + ", ".join(choices) + (", none" if optional else ""))
        return text
    origin = typing.get_origin(inner) or inner
    if isinstance(origin, type) and issubclass(origin, Mapping) or origin is Mapping:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise bad('a JSON object, e.g. {"degrees": 15}')
        return {**dict(current or {}), **{k: _tuples(v) for k, v in value.items()}}
    if origin in (tuple, list, Sequence) or (isinstance(origin, type)
                                             and issubclass(origin, (tuple, list))):
        args = [a for a in typing.get_args(inner) if a is not Ellipsis]
        item = args[0] if args and all(a is args[0] for a in args) else None
        parts = json.loads(text) if text.startswith("[") else [p for p in text.split(",") if p]
        try:
            return tuple(convert(str(p).strip(), item, name) if item in (int, float)
                         else _literal(p.strip()) if isinstance(p, str) else p for p in parts)
        except UserError:
            raise bad("a comma-separated list of numbers, e.g. 16,32") from None
    return _literal(text)


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _literal(text: str):
    """An untyped value: JSON when it parses (numbers, true/false, lists), else the text."""
    if text in NONE_WORDS:
        return None
    if text in TRUE_WORDS or text in FALSE_WORDS:
        return text in TRUE_WORDS
    try:
        return _tuples(json.loads(text))
    except json.JSONDecodeError:
        return text


# --- dataclasses ------------------------------------------------------------------------

def field_hints(cls) -> dict[str, Any]:
    """The type of every field of dataclass ``cls``, in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def apply_settings(obj, assignments: Sequence[str], what: str = "recipe"):
    """``obj`` (a dataclass instance) with each ``"field=value"`` applied in order,
    through :func:`dataclasses.replace` (so the class validates the result)."""
    hints = field_hints(type(obj))
    for text in assignments:
        name, value = split_assignment(text, f"{what} setting")
        if name not in hints:
            raise UserError(f"unknown {what} field {name!r}; choose one of "
                            f"{', '.join(hints)}.")
        metadata = next(f.metadata for f in dataclasses.fields(obj) if f.name == name)
        obj = dataclasses.replace(obj, **{name: convert(
            value, hints[name], name, current=getattr(obj, name),
            choices=metadata.get("choices"))})
    return obj


# --- function keyword arguments ---------------------------------------------------------

def keyword_options(fn: Callable) -> dict[str, tuple[Any, Any]]:
    """``name -> (type hint, default)`` of every keyword argument of ``fn`` (a class: its
    ``__init__``); the hint is the default's type where the signature gives none."""
    try:
        hints = typing.get_type_hints(fn.__init__ if isinstance(fn, type) else fn)
    except (NameError, TypeError):
        hints = {}
    options = {}
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = None if param.default is param.empty else param.default
        options[name] = (hints.get(name, type(default) if default is not None else Any), default)
    return options


def parse_options(fn: Callable, assignments: Sequence[str], base: Mapping[str, Any] = (),
                  what: str = "option") -> dict[str, Any]:
    """``base`` updated with each ``"name=value"`` for keyword arguments of ``fn``."""
    allowed = keyword_options(fn)
    options = dict(base)
    for text in assignments:
        name, value = split_assignment(text, what)
        if name not in allowed:
            names = ", ".join(allowed) or "none"
            raise UserError(f"unknown {what} {name!r}; the allowed ones are {names}.")
        options[name] = convert(value, allowed[name][0], name, current=options.get(name))
    return options
