"""The code in the docs is a copy in the page itself, so it shows where users read the docs: on GitHub
and the package index, which render neither ``literalinclude`` nor ``:doc:`` links. Each copy
names its tested source in the comment line before it, and this script checks (or, with
``--write``, refreshes) that the copy equals the source::

    .. code copied from tests/test_doc_snippets.py [docs_retry_policy]

    .. code-block:: python

        ...

The source is a whole file, the lines between ``[START name]`` and ``[END name]`` (dedented), or
``def name`` (a function, with its decorators). ``tests/test_docs_pages.py`` runs the check.

usage: python scripts/doc_code.py [--write]
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
COPY = re.compile(r"^\.\. code copied from (?P<path>\S+)(?: \[(?P<marker>[\w-]+)\]| def (?P<func>\w+))?\s*$")
BLOCK = re.compile(r"^\.\. code-block:: \S+\s*$")


def source_of(path: str, marker: str | None, func: str | None) -> str:
    """What a copy must equal: the file, a marked region of it, or one function."""
    text = (ROOT / path).read_text(encoding="utf-8")
    lines = text.splitlines()
    if marker:
        start, end = f"[START {marker}]", f"[END {marker}]"
        first = next((i for i, line in enumerate(lines) if line.rstrip().endswith(start)), None)
        last = next((i for i, line in enumerate(lines) if line.rstrip().endswith(end)), None)
        if first is None or last is None:
            raise SystemExit(f"{path} has no {start} … {end}")
        text = textwrap.dedent("\n".join(lines[first + 1 : last]))
    elif func:
        functions = (ast.FunctionDef, ast.AsyncFunctionDef)
        node = next(
            (n for n in ast.walk(ast.parse(text)) if isinstance(n, functions) and n.name == func), None
        )
        if node is None:
            raise SystemExit(f"{path} has no function {func}")
        begin = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        text = textwrap.dedent("\n".join(lines[begin : node.end_lineno]))
    return text.strip("\n")


def copies(page: Path) -> list[tuple[int, int, str, str]]:
    """``(first, end, source, copy)`` for each copy on ``page``: its body's line range, the source
    text it must equal, and what the page has."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found = []
    for i, line in enumerate(lines):
        match = COPY.match(line)
        if not match:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j == len(lines) or not BLOCK.match(lines[j]):
            raise SystemExit(f"{page.name}:{i + 1}: a 'code copied from' comment needs a code-block after it")
        first = j + 1
        while first < len(lines) and (not lines[first].strip() or lines[first].startswith("   :")):
            first += 1
        end = first
        while end < len(lines) and (not lines[end].strip() or lines[end].startswith("    ")):
            end += 1
        while end > first and not lines[end - 1].strip():
            end -= 1
        copy = "\n".join(line[4:] for line in lines[first:end])
        found.append((first, end, source_of(match["path"], match["marker"], match["func"]), copy))
    return found


def stale(page: Path) -> list[str]:
    """What is wrong with the copies on ``page``."""
    return [
        f"{page.relative_to(ROOT)}:{first + 1}: the copy differs from its source"
        for first, _, source, copy in copies(page)
        if copy != source
    ]


def write(page: Path) -> None:
    lines = page.read_text(encoding="utf-8").splitlines()
    for first, end, source, _ in reversed(copies(page)):
        lines[first:end] = [f"    {line}" if line else "" for line in source.splitlines()]
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    pages = sorted(DOCS.glob("*.rst"))
    if "--write" in argv:
        for page in pages:
            write(page)
    problems = [problem for page in pages for problem in stale(page)]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("run: python scripts/doc_code.py --write", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
