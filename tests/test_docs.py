"""The README and docs/*.md name only things that exist.

The rule, for README.md and every docs/*.md:

- Every repository path written in code (backticks or a fenced block) exists: a path
  starting with ``digitlab/``, ``scripts/``, ``benchmarks/``, ``notebooks/``, ``tests/``,
  ``docs/`` or ``.ci/``, and the top-level files ``Makefile``, ``requirements.txt`` and
  ``pyproject.toml``. A ``*``, ``<name>`` or ``{a,b}`` in a path must match at least one
  file. A bare ``name.py`` names a file somewhere in the package, scripts, benchmarks,
  notebooks or tests; in the layout tree of docs/layout.md each ``name.py`` must be in the
  folder its line describes. A dotted ``digitlab.module.name`` names a module that exists
  and, after it, a name its source defines or imports.
- Paths under ``data/``, ``results/`` and ``models/`` are not checked: the pipeline makes
  them, and a fresh clone has (almost) none of them. Absolute paths and ``~/...`` are the
  reader's own folders.
- Every relative Markdown link or image resolves to a file (under data/, results/ and
  models/ as above), and a ``#fragment`` to one of the target's headings.
- Every ``make TARGET`` written in code, and every target of the README's pipeline map, is
  a target of the Makefile (words with ``=`` after it are variables, not targets).
- README.md has at most 250 lines and links every docs/*.md page.
- Every package of requirements.txt has a row in the README's table of dependencies, which
  says why it is there.

``test_the_checks_catch_what_does_not_exist`` feeds the checks made-up names, so a check
that silently passes everything fails there.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from digitlab.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT
README = ROOT / "README.md"
GENERATED = ("data/", "results/", "models/")
TOP_FILES = ("Makefile", "requirements.txt", "pyproject.toml")
SOURCE_DIRS = ("digitlab", "scripts", "benchmarks", "notebooks", "tests")

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"`([^`\n]+)`")
PATH = re.compile(r"(?<![\w./~-])((?:digitlab|scripts|benchmarks|notebooks|tests|docs|\.ci)"
                  r"/[^\s`'\"(),;]*|(?:Makefile|requirements\.txt|pyproject\.toml)\b)")
BARE_PY = re.compile(r"(?<![\w./-])(\w+\.py)\b")
DOTTED = re.compile(r"(?<![\w.])digitlab(?:\.\w+)+")
MAKE = re.compile(r"(?<![\w-])make((?:[ \t]+[^\s#`]+)+)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
TARGET = re.compile(r"^([A-Za-z][\w-]*)[ \t]*:(?!=)", re.MULTILINE)


def code_of(text: str) -> list[str]:
    """The fenced blocks and the inline code spans of a Markdown text."""
    blocks = FENCE.findall(text)
    prose = FENCE.sub("", text)
    return blocks + INLINE.findall(prose)


def _expand(path: str) -> list[str]:
    """Brace alternatives expanded, ``<name>`` and ``[optional]`` parts as globs."""
    path = re.sub(r"<[^>]*>", "*", path)
    path = re.sub(r"\[[^\]]*\]", "*", path)
    parts = re.split(r"\{([^}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def _exists(path: str, root: Path) -> bool:
    path = path.rstrip(".:")
    if path.startswith(GENERATED):
        return True
    for candidate in _expand(path):
        if any(ch in candidate for ch in "*?"):
            if not any(root.glob(candidate.rstrip("/"))):
                return False
        elif not (root / candidate).exists():
            return False
    return True


def missing_paths(text: str, root: Path = ROOT) -> list[str]:
    """Repository paths, bare ``name.py`` files and ``digitlab.x`` names in the code of
    ``text`` that do not exist under ``root``."""
    known_py = {p.name for d in SOURCE_DIRS for p in (root / d).rglob("*.py")}
    problems = []
    for code in code_of(text):
        problems += [p for p in PATH.findall(code) if not _exists(p, root)]
        problems += [name for name in BARE_PY.findall(PATH.sub("", code))
                     if name not in known_py]
        problems += [name for name in DOTTED.findall(code) if not _dotted_exists(name, root)]
    return problems


def _dotted_exists(name: str, root: Path) -> bool:
    parts = name.split(".")
    for n in range(len(parts), 1, -1):
        base = root.joinpath(*parts[:n])
        source = base.with_suffix(".py") if base.with_suffix(".py").is_file() \
            else base / "__init__.py"
        if source.is_file():
            rest = parts[n:]
            return not rest or re.search(rf"\b{re.escape(rest[0])}\b", source.read_text()) \
                is not None
    return False


def missing_in_layout_tree(text: str, root: Path = ROOT) -> list[str]:
    """In a fenced block that draws ``digitlab/``, each ``name.py`` must be in the folder
    its line (or the line it continues) names: ``  engine/  fit.py ...``."""
    problems = []
    for block in FENCE.findall(text):
        if not block.startswith("digitlab/"):
            continue
        folder = None
        for line in block.splitlines():
            if re.match(r"^  \w+\.py", line):
                folder = "digitlab"
            elif found := re.match(r"^  (\w+)/", line):
                folder = f"digitlab/{found.group(1)}"
            elif not line.startswith(" "):
                folder = None
            if folder:
                problems += [f"{folder}/{name}" for name in BARE_PY.findall(line)
                             if not (root / folder / name).is_file()]
    return problems


def makefile_targets(root: Path = ROOT) -> set[str]:
    return set(TARGET.findall((root / "Makefile").read_text()))


def make_targets_named(text: str) -> set[str]:
    """Targets of every ``make ...`` in the code of ``text``, and the first column of a
    table headed "`make` target"."""
    named = set()
    for code in code_of(text):
        for words in MAKE.findall(code):
            for word in words.split():
                if "=" in word or not re.fullmatch(r"[a-z][\w-]*", word):
                    break
                named.add(word)
    for table in re.findall(r"^\| `make` target \|.*?\n\n", text, re.DOTALL | re.MULTILINE):
        named |= set(re.findall(r"^\| `([\w-]+)` \|", table, re.MULTILINE))
    return named


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Relative links and images of the Markdown file ``path`` that point at nothing."""
    problems = []
    for target in LINK.findall(FENCE.sub("", path.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue
        file_part, _, fragment = target.partition("#")
        file = (path.parent / file_part).resolve() if file_part else path
        relative = file.relative_to(root.resolve()).as_posix() \
            if file.is_relative_to(root.resolve()) else str(file)
        if relative.startswith(GENERATED):
            continue
        if not file.exists():
            problems.append(target)
        elif fragment and file.suffix == ".md":
            headings = re.findall(r"^#+\s+(.*)$", FENCE.sub("", file.read_text()),
                                  re.MULTILINE)
            if fragment not in {slug(h) for h in headings}:
                problems.append(target)
    return problems


def normalised(name: str) -> str:
    """A package name as pip compares them (PEP 503): lower case, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def required_packages(requirements: str) -> set[str]:
    """The package names of a requirements file, without extras or versions (options such
    as ``-r other.txt`` are not packages)."""
    names = (re.match(r"[A-Za-z0-9._-]+", line.strip()) for line in requirements.splitlines()
             if line.strip() and not line.lstrip().startswith(("#", "-")))
    return {normalised(m.group(0)) for m in names if m}


def explained_packages(readme: str) -> set[str]:
    """The packages named in the first column of the README's dependency table."""
    section = ("\n" + readme).partition("\n## Dependencies")[2].partition("\n## ")[0]
    names = set()
    for row in re.findall(r"^\|([^|]+)\|", section, re.MULTILINE):
        for name in re.sub(r"\(.*?\)|\[.*?\]", "", row).split(","):
            names.add(normalised(name))
    return names - {"package", "-", ""}


DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
IDS = [p.relative_to(ROOT).as_posix() for p in DOCS]


@pytest.mark.parametrize("path", DOCS, ids=IDS)
def test_every_path_named_exists(path):
    text = path.read_text()
    assert missing_paths(text) == []
    assert missing_in_layout_tree(text) == []


@pytest.mark.parametrize("path", DOCS, ids=IDS)
def test_every_make_target_named_is_in_the_makefile(path):
    assert sorted(make_targets_named(path.read_text()) - makefile_targets()) == []


@pytest.mark.parametrize("path", DOCS, ids=IDS)
def test_every_relative_link_points_at_a_file_and_heading(path):
    assert broken_links(path) == []


def test_the_readme_is_a_short_map_that_links_every_docs_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in LINK.findall(text)}
    assert [p.name for p in DOCS[1:] if p.resolve() not in linked] == []
    assert "make all" in text and "make test" in text


def test_every_requirement_is_explained_in_the_readme():
    required = required_packages((ROOT / "requirements.txt").read_text())
    assert {"torch", "dask", "joblib"} <= required  # the parser reads the real file
    assert sorted(required - explained_packages(README.read_text())) == []


def test_the_checks_catch_what_does_not_exist(tmp_path):
    made_up = ("Run `scripts/no_such_script.py` or `make no-such-target DEVICE=cuda`;\n"
               "see `digitlab/engine/run.py`, `benchmarks/*.nope`, `ghost.py` and\n"
               "`digitlab.engine.recipe.NoSuchRecipe`.\n\n"
               "```\ndigitlab/\n  engine/     fit.py, run.py (train, run)\n```\n")
    assert sorted(missing_paths(made_up)) == sorted([
        "scripts/no_such_script.py", "digitlab/engine/run.py", "benchmarks/*.nope", "ghost.py",
        "digitlab.engine.recipe.NoSuchRecipe", "run.py"])  # run.py: the bare name in the tree
    assert missing_in_layout_tree(made_up) == ["digitlab/engine/run.py"]
    assert make_targets_named(made_up) - makefile_targets() == {"no-such-target"}
    (tmp_path / "README.md").write_text("# Title\n\n## A heading\n")
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"  # links resolve from the page's own folder
    page.write_text("[a page](nowhere.md), [a heading](../README.md#no-such-heading),\n"
                    "[fine](../README.md#a-heading), [made](../results/later.png)\n")
    assert broken_links(page, tmp_path) == ["nowhere.md", "../README.md#no-such-heading"]
    # What is allowed: generated paths, variables after a target, the pending page.
    fine = ("`results/x/none.json`, `data/raw/mnist/`, `make all MNIST_DIR=path`,\n"
            "[studies](docs/studies.md)\n")
    assert missing_paths(fine) == []
    assert make_targets_named(fine) == {"all"}
    requirements = ("# comment\ntorch==2.13.0\ndask[distributed]>=2024.8\nNew_Lib>=1\n"
                    "-r more.txt\n")
    table = ("## Dependencies\n\n| package | why |\n| --- | --- |\n"
             "| torch (pinned `2.13.0`) | nets |\n| numpy, dask[distributed] | arrays |\n"
             "\n## Next\n\n| new-lib | a row of another table |\n")
    assert required_packages(requirements) == {"torch", "dask", "new-lib"}
    assert required_packages(requirements) - explained_packages(table) == {"new-lib"}
