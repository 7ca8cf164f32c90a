"""The command-line wrapper that reports user errors, and the argument parser and
options every script starts from.

A :class:`~digitlab.errors.UserError` is something the person running a script
can fix (a missing file, a malformed CSV, a bad option). Scripts report it as
one sentence on stderr with exit status 2 instead of a traceback.

The options that several scripts share (``--seed``, ``--source``,
``--data-dir``, ``--device``, ``--verbose``) are declared here once, so their
names, defaults and help read the same everywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
