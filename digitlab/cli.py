"""The command-line wrapper that reports user errors, and the argument parser and
options every script starts from.

A :class:`~digitlab.errors.UserError` is something the person running a script
can fix (a missing file, a malformed CSV, a bad option). Scripts report it as
one sentence on stderr with exit status 2 instead of a traceback.

The options that several scripts share (``--seed``, ``--source``,
``--data-dir``, ``--device``, ``--verbose``, and with :class:`RunOptions`
``--recipe``/``--set``/``--arch``/``--option``) are declared here once, so their
names, defaults and help read the same everywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from digitlab.errors import UserError


def cli(main: Callable[[Sequence[str] | None], object]):
    """Wrap a script's ``main`` so user errors end cleanly with exit status 2."""

    @functools.wraps(main)
    def wrapped(argv: Sequence[str] | None = None):
        try:
            return main(argv)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted: no partial output was written.", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapped


@contextlib.contextmanager
def for_option(flag: str):
    """Name the command-line option that a library :class:`UserError` is about.

    Library messages speak of their arguments (``device``, ``n_per_class``); a script
    that passes one option's value to such a call wraps it, and its user reads
    ``--flag: <the library's sentence>``.
    """
    try:
        yield
    except UserError as err:
        raise UserError(f"{flag}: {err}") from None


def script_parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose description is the first paragraph of the script's docstring and
    whose ``--help`` shows every default."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def add_seed(parser: argparse.ArgumentParser, help: str = "seed of the split, initialisation "
             "and batches") -> None:
    parser.add_argument("--seed", type=int, default=0, help=help)


def add_data_options(parser: argparse.ArgumentParser, default_source: str = "auto") -> None:
    """``--source`` and ``--data-dir``: which MNIST-family data a script reads."""
    from digitlab.data.sources import SOURCES

    parser.add_argument("--source", choices=SOURCES, default=default_source,
                        help="MNIST source: auto = a local folder if it holds the files, else "
                             "a verified download, else the embedded 5,000 digits")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="MNIST-format folder for --source local/auto "
                             "(default: data/raw/mnist)")


def add_device(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--device``: auto = CUDA, else MPS, else CPU."""
    from digitlab.devices import DEVICES

    parser.add_argument("--device", default=default, metavar="{" + ",".join(DEVICES) + "}",
                        help="where to compute: auto = a CUDA GPU, else Apple MPS, else the CPU "
                             "(cuda:N picks a GPU)")


def add_verbose_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log details too (e.g. why each MNIST download mirror failed)")


def configure_logging(verbose: bool = False) -> None:
    """Plain messages at INFO; ``verbose`` adds digitlab's DEBUG lines (not other libraries')."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("digitlab").setLevel(logging.DEBUG if verbose else logging.INFO)


# --- a recipe and a network from the command line ---------------------------------------

class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown; the description and the epilog's tables keep their line breaks."""


class RunOptions:
    """``--recipe NAME`` and ``--set FIELD=VALUE`` for any field of the recipe, one flag per
    recipe field as a shorthand (``--momentum 0.95`` is ``--set momentum=0.95``),
    ``--arch NAME`` and ``--option KEY=VALUE`` for any keyword of the network's builder.

    ``recipes``: name -> (network, recipe) of a track (e.g. ``best``, ``reference``); the
    network is the recipe's unless ``--arch`` names another, whose options then start
    from its builder's defaults. A named recipe's learning rate belongs to its network
    and optimiser: with another architecture or optimiser and no ``lr`` given, the
    learning rate is the optimiser's default. The value syntax is
    :mod:`digitlab.settings`'s; settings apply in the order shorthand flags, the
    script's own (``settings=`` of :meth:`resolve`), then ``--set``.
    """

    def __init__(self, recipes: Mapping[str, tuple[Any, Any]],
                 architectures: Mapping[str, Callable], default: str,
                 no_shorthand: Sequence[str] = (),
                 by_size: Callable[[int], str] | None = None):
        """``by_size``: the recipe name for a number of training digits; then ``--recipe``
        defaults to ``auto``, which :meth:`resolve` turns into ``by_size(n_train)``
        (``default`` is what ``--help`` shows)."""
        self.recipes, self.architectures, self.default = dict(recipes), architectures, default
        self.no_shorthand, self.by_size = tuple(no_shorthand), by_size

    def _choices(self) -> list[str]:
        return [*self.recipes, *(["auto"] if self.by_size else [])]

    def add_to(self, parser: argparse.ArgumentParser,
               argv: Sequence[str] | None = None) -> None:
        """Declare the options; ``--help`` ends with the fields of the recipe (and the
        options of the network) that ``argv`` chooses."""
        from digitlab.engine.recipe import Recipe
        from digitlab.settings import describe, field_hints

        group = parser.add_argument_group("recipe and network")
        group.add_argument("--recipe", choices=self._choices(),
                           default="auto" if self.by_size else self.default,
                           help="named recipe (and its network) to start from" +
                           ("; auto: chosen by the size of the training set" if self.by_size
                            else ""))
        group.add_argument("--set", dest="settings", action="append", default=argparse.SUPPRESS,
                           metavar="FIELD=VALUE",
                           help="set one recipe field (repeatable); the fields, their values "
                                "and syntax are listed below")
        group.add_argument("--arch", choices=list(self.architectures), default=argparse.SUPPRESS,
                           help="network (default: the recipe's)")
        group.add_argument("--option", dest="network_options", action="append",
                           default=argparse.SUPPRESS,
                           metavar="KEY=VALUE",
                           help="set one option of the network's builder (repeatable); "
                                "listed below")
        shorthand = parser.add_argument_group(
            "recipe fields as flags", "each is --set FIELD=VALUE for the field of that name")
        for f in dataclasses.fields(Recipe):
            if f.name in self.no_shorthand:
                continue
            flag, hint = "--" + f.name.replace("_", "-"), field_hints(Recipe)[f.name]
            if hint is bool:
                shorthand.add_argument(flag, dest=f"recipe.{f.name}",
                                       action=argparse.BooleanOptionalAction,
                                       default=argparse.SUPPRESS, help=f.metadata.get("help"))
            else:
                choices = f.metadata.get("choices")
                metavar = ("{" + ",".join(choices) + "}" if choices
                           else describe(hint).upper().replace(" ", "-"))
                shorthand.add_argument(flag, dest=f"recipe.{f.name}", default=argparse.SUPPRESS,
                                       metavar=metavar, help=f.metadata.get("help"))
        parser.formatter_class = _HelpFormatter
        parser.epilog = self.help_tables(argv)

    def help_tables(self, argv: Sequence[str] | None) -> str:
        """The fields of the recipe ``argv`` names (or the default) with their values, then
        the options of its network."""
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--recipe", choices=self._choices(), default=self.default)
        pre.add_argument("--arch", default=None)
        known, _ = pre.parse_known_args(sys.argv[1:] if argv is None else argv)
        if known.recipe == "auto":
            known.recipe = self.default
        network, recipe = self.recipes[known.recipe]
        arch = known.arch if known.arch in self.architectures else network.arch
        options = network.options if arch == network.arch else {}
        return "\n".join([recipe_table(recipe, f"recipe {known.recipe!r}"), "",
                          options_table(self.architectures[arch], arch, options)])

    def recipe_name(self, args: argparse.Namespace, n_train: int | None = None) -> str:
        """The named recipe ``args`` ask for; ``auto`` needs ``n_train``."""
        if args.recipe != "auto":
            return args.recipe
        if n_train is None:
            raise ValueError("--recipe auto needs the number of training digits")
        return self.by_size(n_train)

    def resolve(self, args: argparse.Namespace, settings: Sequence[str] = (),
                options: Sequence[str] = (), n_train: int | None = None):
        """The (NetworkSpec, Recipe) the parsed ``args`` ask for; ``settings`` and ``options``
        are a script's own ``FIELD=VALUE`` / ``KEY=VALUE`` (legacy flags), applied before
        ``--set`` / ``--option``; ``n_train`` resolves ``--recipe auto``."""
        from digitlab.engine.networks import NetworkSpec
        from digitlab.settings import apply_settings, parse_options, split_assignment

        network, recipe = self.recipes[self.recipe_name(args, n_train)]
        arch = getattr(args, "arch", network.arch)
        base = network.options if arch == network.arch else {}
        chosen = parse_options(self.architectures[arch],
                               [*options, *getattr(args, "network_options", [])], base,
                               what=f"{arch} option")
        given = [f"{key[len('recipe.'):]}={_text(value)}" for key, value in vars(args).items()
                 if key.startswith("recipe.")]
        given += [*settings, *getattr(args, "settings", [])]
        changed = {split_assignment(text, "recipe setting")[0] for text in given}
        result = apply_settings(recipe, given, "recipe")
        if "lr" not in changed and (arch, result.optimizer) != (network.arch, recipe.optimizer):
            result = result.replace(lr=None)  # the optimiser's default rate
        ignored = sorted(changed & {"momentum", "nesterov"})
        if ignored and result.optimizer != "sgd":
            logging.getLogger(__name__).warning(
                "%s applies to SGD only; the %s optimiser ignores it.", " and ".join(ignored),
                result.optimizer)
        if "betas" in changed and result.optimizer not in ("adam", "adamw"):
            logging.getLogger(__name__).warning(
                "betas applies to Adam and AdamW only; the %s optimiser ignores it.",
                result.optimizer)
        return NetworkSpec(arch, chosen), result


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _value_text(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, Mapping):
        return json.dumps(dict(value))
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def recipe_table(recipe, title: str) -> str:
    """One line per field of ``recipe``: name, syntax, value, help (and allowed values)."""
    from digitlab.settings import describe, field_hints

    hints = field_hints(type(recipe))
    lines = [f"{title} fields (--set FIELD=VALUE; true/false, none for an empty optional "
             "field, lists comma-separated, mappings as JSON):"]
    for f in dataclasses.fields(recipe):
        about = f.metadata.get("help", "")
        if f.metadata.get("choices"):
            about += f" ({'/'.join(f.metadata['choices'])})"
        lines.append(f"  {f.name:<16} {describe(hints[f.name]):<22} "
                     f"{_value_text(getattr(recipe, f.name)):<24} {about}")
    return "\n".join(lines)


def options_table(builder: Callable, arch: str, options: Mapping[str, Any]) -> str:
    """One line per keyword option of ``builder``: name, syntax, value for this run."""
    from digitlab.settings import describe, keyword_options

    allowed = keyword_options(builder)
    if not allowed:
        return f"network {arch!r} takes no options."
    lines = [f"network {arch!r} options (--option KEY=VALUE):"]
    for name, (hint, default) in allowed.items():
        lines.append(f"  {name:<16} {describe(hint):<22} {_value_text(options.get(name, default))}")
    return "\n".join(lines)


def add_study_options(parser: argparse.ArgumentParser, threads: bool = True) -> None:
    """``--workers``, ``--scheduler``, ``--threads`` (unless the script declares its own)
    and ``--fresh``: where a study's independent runs go (:mod:`digitlab.engine.parallel`)."""
    group = parser.add_argument_group("study execution")
    group.add_argument("--workers", default="1", metavar="N|auto",
                       help="local worker processes for the study's runs (auto: one per "
                            "core, or one per GPU with --device cuda)")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on the Dask cluster whose scheduler is at ADDRESS "
                            "(tcp://host:8786) instead of local workers")
    if threads:
        group.add_argument("--threads", type=int, default=None,
                           help="CPU threads per run (default: the cores shared among the "
                                "workers; runs with the same threads give the same numbers)")
    group.add_argument("--fresh", action="store_true",
                       help="rerun every run instead of reusing the ones a previous "
                            "(interrupted) run of the study stored for the same inputs "
                            "and code (make FRESH=1)")


def execution_from_args(args: argparse.Namespace):
    """The :class:`~digitlab.engine.parallel.Execution` the study options ask for."""
    from digitlab.engine.parallel import Execution, resolve_workers

    workers = args.workers if args.workers == "auto" else resolve_workers(args.workers)
    return Execution(workers=workers, scheduler=args.scheduler or None,
                     threads=getattr(args, "threads", None), fresh=args.fresh)
