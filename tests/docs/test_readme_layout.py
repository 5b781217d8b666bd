"""README's map is the generated one, every module has a docstring, and the docs name only paths that exist."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "BENCHMARKS.md")
DOCSTRING_ROOTS = ("serve", "testkit", "benchmarks", "clients")
PATH_PREFIXES = ("serve", "benchmarks", "testkit", "clients", "configs", "scripts", "deploy", "tests")
# Paths the docs name as examples of files a reader makes, not files of this repository.
ILLUSTRATIVE = {"configs/my-ray.yaml"}

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
_PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(PATH_PREFIXES) + r")/[\w./*-]*)")
_PYTHON_M = re.compile(r"\bpython3? -m (\S+)")


def _layout_map():
    name = "layout_map"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "layout_map.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def code_spans(markdown: str) -> list[str]:
    """Every fenced block's body and every inline code span of a markdown text."""
    spans = _FENCE.findall(markdown)
    spans += _INLINE.findall(_FENCE.sub("", markdown))
    return spans


def named_paths(markdown: str) -> set[str]:
    """Repository paths (under the project's top folders) named inside code spans."""
    found = set()
    for span in code_spans(markdown):
        for path in _PATH.findall(span):
            found.add(path.rstrip(".,:;"))
    return found


def _exists(path: str) -> bool:
    if any(c in path for c in "*?["):
        return any(REPO.glob(path))
    return (REPO / path).exists()


def test_readme_layout_map_is_generated_from_the_tree() -> None:
    layout = _layout_map()
    have = layout.current_block((REPO / "README.md").read_text())
    want = layout.generate(REPO)
    if have != want:
        import difflib

        diff = "".join(
            difflib.unified_diff(have.splitlines(True), want.splitlines(True), "README.md", "tree")
        )
        pytest.fail(f"README.md's layout map differs from the tree; run: {layout.REGENERATE}\n{diff}")


def test_every_module_has_a_docstring() -> None:
    missing = []
    for root in DOCSTRING_ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            doc = ast.get_docstring(ast.parse(path.read_text(), filename=str(path)))
            if not (doc and doc.strip()):
                missing.append(str(path.relative_to(REPO)))
    assert not missing, (
        "modules without a docstring (one to three lines saying what the module owns; README's map "
        f"is built from them): {missing}"
    )


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_the_docs_name_exists(doc: str) -> None:
    named = named_paths((REPO / doc).read_text())
    assert named, f"{doc}: no repository paths found; has the path pattern broken?"
    missing = sorted(p for p in named - ILLUSTRATIVE if not _exists(p))
    assert not missing, f"{doc} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_python_m_command_the_docs_give_resolves(doc: str) -> None:
    found = (m.rstrip("`'\"),;:.") for m in _PYTHON_M.findall((REPO / doc).read_text()))
    modules = {m for m in found if "<" not in m}  # `python -m benchmarks.<suite>` is a pattern, not a command
    assert modules, f"{doc}: no `python -m` commands found"
    broken = []
    for name in sorted(modules):
        spec = importlib.util.find_spec(name)
        if spec is None:
            broken.append(name)
        elif (
            spec.submodule_search_locations is not None
            and importlib.util.find_spec(f"{name}.__main__") is None
        ):
            broken.append(f"{name} (a package without __main__)")
    assert not broken, f"{doc} gives `python -m` commands that cannot run: {broken}"


def test_first_sentence_reads_a_docstring_or_comment() -> None:
    first = _layout_map().first_sentence
    assert first("One thing: a, b. Then more.\n\nDetails.") == "One thing: a, b"
    assert first("Wrapped over\ntwo lines, e.g. this one. Next") == "Wrapped over two lines, e.g. this one"
    assert first("`python -m x`: runs it") == "`python -m x`: runs it"


def test_named_paths_reads_code_spans_only() -> None:
    text = "See `serve/terms.py`, not serve/nowhere.py.\n```\npython -m x --profile configs/a.yaml\n```\n"
    assert named_paths(text) == {"serve/terms.py", "configs/a.yaml"}
