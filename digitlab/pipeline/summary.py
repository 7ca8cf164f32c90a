"""The results table: every number quoted in the README, read from results/.

Each :class:`Row` names a JSON file under ``results/``, the key path of one
number in it, and the command that regenerates the file. The table of one
results tree is written to its ``summary.md``: the committed record of that
tree. The README's table is joined from the ``summary.md`` of several trees
(:func:`join`: the offline default in ``results/``, the full MNIST in
``runs/full-mnist/results/``), one value column each, so no number in the
README is typed by hand and each column can be regenerated on its own.

The table holds only what was measured. A command none of whose files exist yet
(after a fresh ``make all``, every benchmark) is not a row of "not run yet"
but one entry of the line under the table, with what it measures
(:data:`COMMANDS`): "Not run yet: `make mnist-bench` (...), ...".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from digitlab import paths
from digitlab.errors import UserError
from digitlab.pipeline.published import PUBLISHED
from digitlab.pipeline.scale import is_full_scale
from digitlab.repro import atomic_write

START, END = "<!-- results:start -->", "<!-- results:end -->"
NOT_RUN = "not run yet"
HEADER = "| track | result | value | source (regenerate with) |"
NOTHING = "Nothing measured yet: `make all` runs the pipeline."
ABSENT = "–"  # a row of the README's table that one tree does not have


@dataclass(frozen=True)
class Row:
    """One number of the table. A value whose enclosing object says ``"failed": true``
    (e.g. a timed step that failed) reads "failed" instead of a number."""

    track: str
    label: str
    file: str  # relative to results/; may be a glob (the newest match is read)
    key: str  # dotted path into the JSON document
    fmt: str  # "pct", "float3", "int", "sec", "ms" or a str.format spec
    command: str
    # (dotted key, value) pairs a matching file must hold: a glob then reads the newest
    # file that is what the label says (e.g. the clean evaluation, not a noisy one).
    where: tuple[tuple[str, object], ...] = ()
    # A file that holds only some of its rows by design (pipeline_time.json: the targets that
    # were timed): then a row whose key is absent was not run, rather than "missing".
    partial: bool = False


def _format(value, fmt: str) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if fmt == "seeds":  # a headline over seeds: mean ± std, the minimum beside it
        seeds = "1 seed" if value["n_seeds"] == 1 else f"{value['n_seeds']} seeds"
        return f"{value['mean']:.2%} ± {value['std']:.2%} (min {value['min']:.2%}, {seeds})"
    formats = {"str": "{}", "pct": "{:.1%}", "pct2": "{:.2%}", "float3": "{:.3f}", "int": "{:,.0f}",
               "sec": "{:.1f} s", "ms": "{:.1f} ms"}
    return formats.get(fmt, fmt).format(value)


def lookup(document: dict, key: str):
    value = document
    for part in key.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        else:
            value = value[part]
    return value


def values(rows: list[Row], results: Path | None = None) -> list[str]:
    """Each row's formatted value; "not run yet" when its file is missing, "missing" when
    the file lacks the key. A UserError when the files measured different data scales."""
    results = results or paths.results_dir()
    cache: dict[tuple, tuple[Path, dict] | None] = {}
    for row in rows:
        if (row.file, row.where) not in cache:
            cache[row.file, row.where] = _find_document(results, row)
    check_one_scale({path: document for path, document in filter(None, cache.values())},
                    results)
    out = []
    for row in rows:
        found = cache[row.file, row.where]
        document = None if found is None else found[1]
        try:
            out.append(NOT_RUN if document is None else _value(document, row))
        except KeyError:
            out.append(NOT_RUN if row.partial else "missing")
        except (IndexError, TypeError, ValueError):
            out.append("missing")
    return out


@dataclass(frozen=True)
class NotRun:
    """A command whose results are (partly) missing: ``missing`` of its ``total`` rows."""

    command: str
    what: str  # what the command measures, from COMMANDS
    missing: int
    total: int

    def describe(self) -> str:
        """"`make X` (what it measures)", saying how much is missing when only part is."""
        what = self.what
        if self.missing < self.total:
            what = f"{what}; {self.missing} of its {self.total} results missing"
        return f"`{self.command}` ({what})"


def split(rows: list[Row], results: Path | None = None
          ) -> tuple[list[tuple[Row, str]], list[NotRun]]:
    """The measured rows with their values, and each command with rows not run yet, once, in
    the order of the rows. A file that lacks a key ("missing") or a step that failed
    ("failed") stays a row: those are results, and wrong ones should be seen."""
    measured, unread = [], {}
    for row, value in zip(rows, values(rows, results), strict=True):
        if value == NOT_RUN:
            unread[row.command] = unread.get(row.command, 0) + 1
        else:
            measured.append((row, value))
    total = {command: sum(row.command == command for row in rows) for command in unread}
    return measured, [NotRun(command, COMMANDS.get(command, "its results"), n, total[command])
                      for command, n in unread.items()]


def not_run_line(not_run: list[NotRun]) -> str:
    """"Not run yet: `make A` (...), `make B` (...)." or "" when everything was run."""
    if not not_run:
        return ""
    return "Not run yet: " + ", ".join(item.describe() for item in not_run) + "."


def render(rows: list[Row], results: Path | None = None) -> str:
    """A Markdown table of what was measured, then one line naming each command whose
    results are missing and what it measures."""
    measured, not_run = split(rows, results)
    if measured:
        lines = [HEADER, "| --- | --- | --- | --- |"]
        lines += [f"| {row.track} | {row.label} | {value} | `results/{row.file}` "
                  f"(`{row.command}`) |" for row, value in measured]
    else:
        lines = [NOTHING]
    if not_run:
        lines += ["", not_run_line(not_run)]
    return "\n".join(lines) + "\n"


def _value(document: dict, row: Row) -> str:
    parent_key, _, _ = row.key.rpartition(".")
    parent = lookup(document, parent_key) if parent_key else document
    if isinstance(parent, dict) and parent.get("failed") is True:
        return "failed"
    return _format(lookup(document, row.key), row.fmt)


def _find_document(results: Path, row: Row) -> tuple[Path, dict] | None:
    """The newest file ``row.file`` matches under ``results`` that holds ``row.where``."""
    matches = [p for p in results.glob(row.file) if p.is_file()]
    for path in sorted(matches, key=lambda p: p.stat().st_mtime, reverse=True):
        document = _read_json(path, row.command)
        if all(_holds(document, key, value) for key, value in row.where):
            return path, document
    return None


# The files whose data is a full-size set in any results tree: the full-scale benchmark
# exists to train on one, the offline default's tree included.
ANY_SCALE = ("full_scale/benchmark.json",)


def check_one_scale(documents: dict[Path, dict], results: Path) -> None:
    """A UserError unless every file of one results tree that records its MNIST data
    (``data.n_train`` and ``data.n_val``, as save_metrics writes them) measured the same
    scale: embedded and full-MNIST figures must not meet in one column, as they would
    after a full-size run written without OUT= into the offline default's tree."""
    by_scale: dict[bool, Path] = {}
    for path, document in sorted(documents.items()):
        digits = _training_digits(document)
        if digits is not None and path.relative_to(results).as_posix() not in ANY_SCALE:
            by_scale.setdefault(is_full_scale(digits), path)
    if len(by_scale) == 2:
        full, small = by_scale[True], by_scale[False]
        raise UserError(f"{results} mixes data scales ({full} was measured on a full-size "
                        f"set, {small} on a small one): rerun the command of the file that "
                        f"does not belong, a full-MNIST one with OUT=runs/full-mnist, or move "
                        f"it out.")


def _training_digits(document: dict) -> int | None:
    """Training + validation digits of the MNIST data a results file names, if it does."""
    data = document.get("data")
    if not isinstance(data, dict):
        return None
    n_train, n_val = data.get("n_train"), data.get("n_val")
    if not isinstance(n_train, int):
        return None
    return n_train + (n_val if isinstance(n_val, int) else 0)


def _holds(document: dict, key: str, value) -> bool:
    try:
        return lookup(document, key) == value
    except (KeyError, IndexError, TypeError, ValueError):
        return False


def _read_json(path: Path, command: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({err}); regenerate it with `{command}`.") \
            from None


def sources(rows: list[Row], results: Path | None = None) -> list[Path | None]:
    """The file each row's value is read from (None when it has none), as :func:`values`
    picks it: the page marks a value whose file is older than the run."""
    results = results or paths.results_dir()
    cache: dict[tuple, Path | None] = {}
    for row in rows:
        if (row.file, row.where) not in cache:
            found = _find_document(results, row)
            cache[row.file, row.where] = None if found is None else found[0]
    return [cache[row.file, row.where] for row in rows]


# --- which run wrote the files ------------------------------------------------------------
# `make all` marks its start in this file of the results tree (hidden: no metrics file) and
# its completion after its last step; a tree that `make all` never ran holds none.
RUN_MARKER = ".make_all.json"
# File times come from the kernel's coarse clock, which may lag the clock the start is read
# from by a tick (milliseconds): a file written just after the start must not look older.
CLOCK_SLACK = 0.05


@dataclass(frozen=True)
class PipelineRun:
    """The last ``make all`` of a results tree: when it started, and whether every step
    succeeded. A file older than ``started`` comes from an earlier run."""

    started: float  # seconds since the epoch, comparable with file modification times
    started_utc: str
    finished: bool

    def earlier(self, path: Path) -> bool:
        """Whether ``path`` was written before this run started."""
        return path.stat().st_mtime < self.started - CLOCK_SLACK


def begin_run(results: Path | None = None) -> PipelineRun:
    """Record that a ``make all`` starts now (not finished yet)."""
    now = datetime.now(UTC)
    run = PipelineRun(now.timestamp(), now.isoformat(timespec="seconds"), False)
    _write_run(run, results)
    return run


def end_run(results: Path | None = None) -> PipelineRun:
    """Record that every step of the ``make all`` begun by :func:`begin_run` succeeded."""
    run = read_run(results)
    if run is None:
        raise UserError(f"{_marker(results)} does not exist: no `make all` was begun in this "
                        "results tree; run scripts/summarize.py --begin first (make all does).")
    run = PipelineRun(run.started, run.started_utc, True)
    _write_run(run, results)
    return run


def read_run(results: Path | None = None) -> PipelineRun | None:
    """The last ``make all`` recorded in ``results``; None if it records none."""
    marker = _marker(results)
    if not marker.is_file():
        return None
    try:
        document = json.loads(marker.read_text())
        return PipelineRun(float(document["started"]), str(document["started_utc"]),
                           document["finished"] is True)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
        raise UserError(f"{marker} is not a readable record of a `make all` run; delete it "
                        "or run make all again.") from None


def run_note(run: PipelineRun | None) -> str:
    """One sentence for a run that has not finished, else ""."""
    if run is None or run.finished:
        return ""
    return (f"**Unfinished run**: the `make all` started at {run.started_utc} has not "
            "finished (still running, or interrupted); files older than its start come "
            "from an earlier run.")


def _marker(results: Path | None) -> Path:
    return (results or paths.results_dir()) / RUN_MARKER


def _write_run(run: PipelineRun, results: Path | None) -> None:
    with atomic_write(_marker(results)) as handle:
        json.dump({"started": run.started, "started_utc": run.started_utc,
                   "finished": run.finished}, handle, indent=2)
        handle.write("\n")


_BLOCK = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)


def check_readme(readme: Path) -> str:
    """The text of ``readme``; UserError unless it holds the results markers."""
    if not readme.is_file():
        raise UserError(f"{readme} does not exist; pass --readme PATH.")
    text = readme.read_text()
    if not _BLOCK.search(text):
        raise UserError(f"{readme} has no {START} ... {END} block; add the two markers "
                        "where the results table should go.")
    return text


def update_readme(table: str, readme: Path) -> None:
    """Replace what stands between the results markers of ``readme``."""
    text = check_readme(readme)
    with atomic_write(readme) as handle:
        handle.write(_BLOCK.sub(lambda _: f"{START}\n{table}{END}", text))



# The README's table: the summary.md of several results trees side by side. It is read from
# the committed summary.md files, not from the JSON files, because a tree's JSON files are not
# committed and the full-MNIST run is not redone with every `make summary`.
@dataclass(frozen=True)
class Measured:
    """One row of a ``summary.md`` table, as :func:`render` wrote it."""

    track: str
    label: str
    value: str
    file: str  # as the source cell names it, e.g. results/mnist/benchmark.json
    command: str

    @property
    def key(self) -> tuple[str, str]:
        """What the trees' tables are joined on: (track, result)."""
        return self.track, self.label


@dataclass(frozen=True)
class Summary:
    """What a ``summary.md`` holds: its measured rows and its "Not run yet:" line."""

    rows: tuple[Measured, ...]
    not_run: str = ""  # "" when everything was run


_SOURCE = re.compile(r"`(?P<file>[^`]+)` \(`(?P<command>[^`]+)`\)")


def parse_summary(text: str, source: str = "summary.md") -> Summary:
    """The rows and the "Not run yet:" line of a ``summary.md`` that :func:`render` wrote;
    ``source`` names the file in the error about a row it cannot read."""
    rows, not_run = [], ""
    for line in text.splitlines():
        if line.startswith("Not run yet: "):
            not_run = line
        elif line.startswith("| ") and line != HEADER and not line.startswith("| --- "):
            rows.append(_parse_row(line, source))
    return Summary(tuple(rows), not_run)


def _parse_row(line: str, source: str) -> Measured:
    """``| track | result | value | `file` (`command`) |`` as a :class:`Measured`."""
    cells = line.removeprefix("| ").removesuffix(" |").split(" | ")
    match = _SOURCE.fullmatch(cells[-1]) if len(cells) == 4 else None
    if match is None:
        raise UserError(f"{source}: cannot read the table row {line!r}; regenerate the file "
                        "with `make summary`.")
    return Measured(*cells[:3], match["file"], match["command"])


@dataclass(frozen=True)
class Column:
    """One value column of the README's table: the ``summary.md`` of one results tree."""

    name: str
    summary: Path
    note: str = ""  # said once under the table: how this tree's values are regenerated


EMBEDDED, FULL_MNIST = "embedded digits (offline default)", "full MNIST"


def default_columns() -> list[Column]:
    """The offline default (``make all``) and the full MNIST (the same with
    ``MNIST_DIR=FOLDER OUT=runs/full-mnist``)."""
    full = _shown(paths.full_mnist_run())
    note = (f"**{FULL_MNIST}**: the same commands with `MNIST_DIR=FOLDER OUT={full}` added "
            f"(FOLDER holds the four MNIST IDX files), e.g. "
            f"`make all MNIST_DIR=FOLDER OUT={full}`.")
    return [Column(EMBEDDED, paths.PROJECT_ROOT / "results" / "summary.md"),
            Column(FULL_MNIST, paths.full_mnist_run() / "results" / "summary.md", note)]


def read_columns(columns: list[Column]) -> list[tuple[Column, Summary]]:
    """Each column whose ``summary.md`` exists, with what it holds; the others are left out
    (a tree not run yet is no column of dashes)."""
    return [(column, parse_summary(column.summary.read_text(), str(column.summary)))
            for column in columns if column.summary.is_file()]


def readme_table(columns: list[Column] | None = None) -> str:
    """The README's table from the ``summary.md`` of ``columns`` (default: both trees)."""
    summaries = read_columns(default_columns() if columns is None else columns)
    return join(summaries, [(row.track, row.label) for row in ROWS])


def join(summaries: list[tuple[Column, Summary]], order: list[tuple[str, str]] = ()) -> str:
    """A Markdown table with one value column per summary, joined on (track, result), then
    where the values come from, each column's note and each column's "Not run yet:" line."""
    tables = [{row.key: row for row in summary.rows} for _, summary in summaries]
    keys = _joined_keys(tables, order)
    if keys:
        names = [column.name for column, _ in summaries]
        lines = ["| track | result | " + " | ".join(names) + " | regenerate with |",
                 "| --- | --- | " + "--- | " * len(names) + "--- |"]
        lines += [_joined_row(key, tables) for key in keys]
    else:
        lines = [NOTHING]
    for paragraph in _under_the_table(summaries):
        lines += ["", paragraph]
    return "\n".join(lines) + "\n"


def _joined_keys(tables: list[dict], order: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every (track, result) of any tree once, in the order of ``order`` (ROWS); a key that
    ``order`` lacks (an older summary's) comes after, and the first tree's rows come before
    the rows only a later tree has."""
    keys = list(dict.fromkeys(key for table in tables for key in table))
    rank = {key: i for i, key in enumerate(order)}
    return sorted(keys, key=lambda key: rank.get(key, len(rank)))


def _joined_row(key: tuple[str, str], tables: list[dict]) -> str:
    """One row: the value of each tree (ABSENT where it lacks the row), then the command of
    the first tree that has it."""
    command = next(table[key].command for table in tables if key in table)
    cells = [*key, *(table[key].value if key in table else ABSENT for table in tables),
             f"`{command}`"]
    return "| " + " | ".join(cells) + " |"


def _under_the_table(summaries: list[tuple[Column, Summary]]) -> list[str]:
    """The paragraphs under the joined table: where each column's values come from (its
    summary.md names each value's JSON file), the columns' notes, their "Not run yet:" lines."""
    if not summaries:
        return []
    sources = ", ".join(f"{column.name} from `{_shown(column.summary)}`"
                        for column, _ in summaries)
    paragraphs = [f"Each column is read from a summary that names the JSON file behind every "
                  f"value: {sources}."]
    paragraphs += [column.note for column, _ in summaries if column.note]
    paragraphs += [f"**{column.name}**: {summary.not_run}" for column, summary in summaries
                   if summary.not_run]
    return paragraphs


def _shown(path: Path) -> str:
    """``path`` as the README names it: relative to the repository when inside it, else as
    given."""
    if path.is_absolute() and path.resolve().is_relative_to(paths.PROJECT_ROOT):
        return path.resolve().relative_to(paths.PROJECT_ROOT).as_posix()
    return path.as_posix()

_MM, _MN, _NZ, _GEN = "Mini MNIST", "MNIST CNNs", "Noisy MNIST", "Generator"
# What each command of the table measures: said in the "Not run yet" line when its files are
# missing, so a reader knows what the command would add before spending its time.
COMMANDS = {
    "make pipeline-time": "the wall time of `make all` and `make test`",
    "make workers-bench": "the recipe comparison (2 candidates) on 1 and on 2 worker processes",
    "make minimnist": "Mini MNIST: K-Means and the ladder from chance to the small CNN",
    "make minimnist-bench": "the Mini MNIST targets over 3 seeds, and the random-pixel control",
    "make mnist": "the best CNN, the NumPy models, the variants study and the CNN project",
    "make mnist-recipe": "how the best CNN's recipe was chosen, by 4-fold cross-validation; "
                         "the longest benchmark",
    "make mnist-full-recipe": "how the full-MNIST recipe was chosen, on validation "
                              "(needs the full MNIST)",
    "make mnist-bench": "best CNN vs the PyTorch example over 3 seeds",
    "make full-scale-bench": "the best CNN's recipe on a full-size MNIST-format folder",
    "make speedrun": "training to 99.0, 99.5 or 99.7 % (TARGET=) over 5 seeds, against the "
                     "anchor recipe (needs the full MNIST)",
    "make reproduce": "the learning journal's published numbers at its own settings, 3 seeds "
                      "each (needs the full MNIST; hours on a CPU)",
    "make noisy": "dense networks and CNNs on awgn digits, cross-validation, robustness",
    "make noisy-bench": "best CNN vs the dense network on awgn digits over 3 seeds",
    "make noisy-recipe": "the recipe comparison on awgn digits",
    "make generator": "the PCA + KDE generator: variance, bandwidth, sample quality",
    "make generator-bench": "generated digits the best CNN reads as asked, over 3 seeds",
    "make app-bench": "web app latency under load; needs `make generator` and `make mnist`",
    "make classify-bench": "POST /classify on 280x280 PNGs vs the CNN on the 28x28 digits; "
                           "needs `make mnist`",
}
# evaluate_model.py names its folder after the test set: test-embedded offline, test-local
# or test-download with the real 10,000 test digits, and test-<source>_<noise> after
# --noise; the clean one is the evaluation whose test set has no noise.
# The journal's best variants run, the one row of its table it published a number for.
_JOURNAL_RUN = PUBLISHED["variants_best"]["run"]
_EVAL = "mnist/evaluation/mnist_cnn__test-*/metrics.json"
_CLEAN = (("test_set.noise", None),)
# The reproduction's published rows (digitlab.mnist.journal.experiments), by key.
_JOURNAL_ROWS = {"cnn2": "2-conv CNN", "cnn3": "3-conv CNN", "plain / sgd": "CNN + SGD",
                 "dropout / sgd": "CNN + dropout + SGD",
                 "batch-norm / sgd": "CNN + batch norm + SGD",
                 "dropout + batch-norm / sgd": "CNN + dropout + batch norm + SGD"}
# What a speedrun row holds (benchmarks/speedrun.py writes it as metrics.headline).
_SPEED = "test accuracy over seeds, mean training time, the anchor's seconds over ours"


def _rows(track: str, file: str, command: str, *items: tuple[str, str, str],
          where: tuple[tuple[str, object], ...] = (), partial: bool = False) -> list[Row]:
    """Rows that read ``file`` (regenerated by ``command``): one per (label, key, fmt)."""
    return [Row(track, label, file, key, fmt, command, where, partial)
            for label, key, fmt in items]


ROWS: list[Row] = [
    *_rows("Pipeline", "pipeline_time.json", "make pipeline-time",
           ("`make all` wall time (2 cores)", "metrics.all.minutes", "{:.1f} min"),
           ("`make test` wall time (2 cores)", "metrics.test.minutes", "{:.1f} min"),
           partial=True),
    *_rows("Pipeline", "mnist/study_workers.json", "make workers-bench",
           ("recipe comparison, 2 candidates x 4 folds: 1 worker", "metrics.wall_seconds.1",
            "sec"),
           ("the same on 2 workers", "metrics.wall_seconds.2", "sec"),
           ("speed-up of 2 workers (1 thread per run each time)", "metrics.speedup",
            "{:.2f}x"),
           ("the two tables identical", "metrics.identical", "str")),
    *_rows(_MM, "mini_mnist/evaluate_metrics.json", "make minimnist",
           ("K-Means ARI (seed 0)", "metrics.ari", "float3"),
           ("K-Means cluster accuracy (Hungarian)", "metrics.cluster_accuracy", "pct")),
    *_rows(_MM, "mini_mnist/ladder.json", "make minimnist",
           ("test accuracy: chance", "metrics.chance_accuracy", "pct"),
           ("test accuracy: K-Means (Hungarian)", "metrics.kmeans_accuracy", "pct"),
           ("test accuracy: logistic regression", "metrics.logistic_accuracy", "pct"),
           ("test accuracy: MLP 72-20-10-10", "metrics.mlp_accuracy", "pct"),
           ("test accuracy: small CNN", "metrics.cnn_accuracy", "pct")),
    *_rows(_MM, "mini_mnist/benchmark.json", "make minimnist-bench",
           ("K-Means ARI, mean of 3 seeds", "metrics.default.ari", "float3"),
           ("random-pixel control: ARI", "metrics.random.ari", "float3"),
           ("random-pixel control: MLP accuracy", "metrics.random.mlp_accuracy", "pct"),
           ("all targets met", "metrics.all_passed", "str")),
    *_rows(_MN, _EVAL, "make mnist",
           ("best CNN, held-out test set", "metrics.accuracy", "pct2"),
           ("best CNN, test set source", "test_set.source", "str"),
           ("best CNN, test set size", "metrics.n", "int"), where=_CLEAN),
    *_rows(_MN, "mnist/mnist_cnn/metrics.json", "make mnist",
           ("best CNN, training time", "metrics.train_seconds", "sec")),
    *_rows(_MN, "mnist/numpy/metrics.json", "make mnist",
           ("NumPy softmax regression, test", "metrics.softmax_regression.test_accuracy", "pct"),
           ("NumPy MLP, test", "metrics.mlp.test_accuracy", "pct")),
    *_rows(_MN, "mnist/first_cnn/metrics.json", "make mnist",
           (f"first 2-conv CNN, validation, pipeline's short run (journal: "
            f"{PUBLISHED['cnn2']:.2%} test)", "metrics.cnn2.val_acc", "pct2"),
           (f"first 3-conv CNN, validation, pipeline's short run (journal: "
            f"{PUBLISHED['cnn3']:.2%} test)",
            "metrics.cnn3.val_acc", "pct2")),
    *_rows(_MN, "mnist/variants/summary.json", "make mnist",
           ("variants study: best run", "metrics.best_run", "str"),
           ("variants study: its validation accuracy", "metrics.val_accuracy", "pct2"),
           (f"variants: {_JOURNAL_RUN}, validation, pipeline's short run (journal: "
            f"{PUBLISHED['variants_best']['accuracy']:.2%} test)",
            f"metrics.by_run.{_JOURNAL_RUN}.val_accuracy", "pct2"),
           (f"variants: {_JOURNAL_RUN}, epochs to converge (journal: "
            f"{PUBLISHED['variants_best']['epochs']})",
            f"metrics.by_run.{_JOURNAL_RUN}.epochs_to_converge", "int")),
    *_rows(_MN, "journal/reproduction.json", "make reproduce",
           *((f"journal's settings: {label}, test, 3 seeds", f"metrics.headlines.{key}", "str")
             for key, label in _JOURNAL_ROWS.items()),
           ("journal's settings: wall time of the command that wrote the table",
            "metrics.wall_seconds", "{:,.0f} s")),
    *_rows(_MN, "mnist/project/metrics.json", "make mnist",
           ("CNN project notebook (short budget), test", "metrics.test_accuracy", "pct")),
    *_rows(_MN, "mnist/recipe_selection.json", "make mnist-recipe",
           ("recipe chosen by 4-fold CV on train + validation, within the time budget",
            "metrics.chosen", "str"),
           ("its out-of-fold accuracy (4-fold CV)", "metrics.chosen_accuracy", "pct2")),
    *_rows(_MN, "mnist/recipe_selection_full.json", "make mnist-full-recipe",
           ("full-MNIST recipe chosen on 55,000 training / 5,000 validation digits",
            "metrics.chosen", "str"),
           ("its validation accuracy", "metrics.chosen_accuracy", "pct2")),
    *_rows(_MN, "mnist/benchmark.json", "make mnist-bench",
           ("benchmark: best CNN test accuracy over seeds", "metrics.best.test_accuracy",
            "seeds"),
           ("benchmark: best CNN training time (mean)", "metrics.best.train_seconds.mean", "sec"),
           ("benchmark: target met (mean >= 99.2% in <= 60 s; full MNIST: >= 99.75% in "
            "<= 600 s)", "metrics.target.met", "str"),
           ("benchmark: reference network test accuracy over seeds",
            "metrics.reference.test_accuracy", "seeds"),
           ("benchmark: reference network training time (mean)",
            "metrics.reference.train_seconds.mean", "sec"),
           ("benchmark: images/s, best over reference",
            "metrics.ratios.images_per_second_best_over_reference", "{:.2f}x"),
           ("benchmark: test accuracy, best minus reference (means)",
            "metrics.ratios.test_accuracy_best_minus_reference", "{:+.2%}")),
    *_rows(_MN, "full_scale/benchmark.json", "make full-scale-bench",
           ("full scale: data set", "data.description", "str"),
           ("full scale: best CNN recipe, test accuracy", "metrics.test_accuracy", "pct2"),
           ("full scale: epochs trained", "metrics.epochs", "int"),
           ("full scale: seconds per epoch", "metrics.seconds_per_epoch", "sec"),
           ("full scale: training images per second", "metrics.images_per_second", "{:,.0f}"),
           ("full scale: peak memory (RSS)", "metrics.peak_rss_mib", "{:,.0f} MiB"),
           ("full scale: device", "metrics.device_name", "str")),
    *_rows(_MN, "speedrun/fast99.json", "make speedrun",
           (f"speedrun to 99.0 % (2x faster than the anchor): {_SPEED}", "metrics.headline",
            "str")),
    *_rows(_MN, "speedrun/fast995.json", "make speedrun",
           (f"speedrun to 99.5 % (within 30 s): {_SPEED}", "metrics.headline", "str")),
    *_rows(_MN, "speedrun/fast997.json", "make speedrun",
           (f"speedrun to 99.7 % (within 300 s): {_SPEED}", "metrics.headline", "str")),
    *_rows(_NZ, "noisy_mnist/metrics.json", "make noisy",
           ("awgn test: dense network", "metrics.test_accuracy.dnn", "pct"),
           ("awgn test: improved dense network", "metrics.test_accuracy.dnn_improved", "pct"),
           ("awgn test: CNN", "metrics.test_accuracy.cnn", "pct"),
           ("awgn test: improved CNN", "metrics.test_accuracy.cnn_improved", "pct"),
           ("5-fold CV, improved CNN: mean", "metrics.cross_validation.mean", "pct"),
           ("5-fold CV, improved CNN: std", "metrics.cross_validation.std", "pct"),
           ("robustness: trained and tested on the same noise (mean)",
            "metrics.robustness.diagonal_mean", "pct"),
           ("robustness: trained on one noise, tested on another (mean)",
            "metrics.robustness.off_diagonal_mean", "pct")),
    *_rows(_NZ, "noisy_mnist/benchmark.json", "make noisy-bench",
           ("benchmark: best CNN on awgn test (fresh noise every batch) over seeds",
            "metrics.cnn.test_accuracy", "seeds"),
           ("benchmark: target met (mean >= 97.5%)", "metrics.target.met", "str"),
           ("benchmark: the same CNN trained on the fixed noisy set",
            "metrics.cnn_fixed_noise.test_accuracy", "seeds"),
           ("benchmark: dense network on awgn test", "metrics.dnn.test_accuracy", "seeds")),
    *_rows(_NZ, "noisy_mnist/recipe_selection_awgn.json", "make noisy-recipe",
           ("recipe chosen the same way on awgn train + validation digits",
            "metrics.chosen", "str"),
           ("its out-of-fold accuracy", "metrics.chosen_accuracy", "pct"),
           ("out-of-fold accuracy, 40 epochs on the fixed noisy set",
            "metrics.candidates.40 epochs.accuracy", "pct")),
    *_rows(_GEN, "generator/metrics.json", "make generator",
           ("variance explained by 50 components (train; the original README: "
            f"{PUBLISHED['generator_variance_50']})", "metrics.variance_explained", "pct"),
           ("components needed for 95% of the variance", "metrics.components_for_95pct", "int"),
           ("bandwidth chosen by cross-validation", "metrics.bandwidth", "float3")),
    *_rows(_GEN, "generator/quality.json", "make generator",
           ("samples read as the requested digit by the CNN",
            "metrics.recognisability.agreement", "pct"),
           ("median distance to nearest training image: samples / test digits",
            "metrics.novelty.median_ratio", "float3")),
    *_rows(_GEN, "generator/benchmark.json", "make generator-bench",
           ("benchmark: samples read as the requested digit, over seeds",
            "metrics.recognisability", "seeds"),
           ("benchmark: novelty ratio (mean over seeds)", "metrics.novelty_median_ratio.mean",
            "float3")),
    *_rows(_GEN, "generator/app_load.json", "make app-bench",
           ("web app p50 latency (16 images, 16 clients)", "metrics.p50_ms", "ms"),
           ("web app p99 latency", "metrics.p99_ms", "ms"),
           ("web app errors in 2,000 requests", "metrics.errors", "int"),
           ("web app POST /classify p50 latency (280x280 PNG, 16 clients)",
            "metrics.classify.p50_ms", "ms"),
           ("web app POST /classify p99 latency (target <= 100 ms)", "metrics.classify.p99_ms",
            "ms"),
           ("web app POST /classify errors in 2,000 requests", "metrics.classify.errors",
            "int")),
    *_rows(_GEN, "web/classify_api.json", "make classify-bench",
           ("drawing API: CNN accuracy on the 28x28 test digits", "metrics.direct_accuracy",
            "pct"),
           ("drawing API: the same digits as 280x280 PNGs through /classify",
            "metrics.api_accuracy", "pct"),
           ("drawing API: dark ink on light paper", "metrics.api_accuracy_inverted", "pct")),
]
