"""The guides read the same on GitHub and the package index as in the built docs: the code is in the
page (a copy checked against its tested source by scripts/doc_code.py), links are absolute URLs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
GUIDES = [p for p in sorted((ROOT / "docs").glob("*.rst")) if p.name not in ("changelog.rst", "api.rst")]


def test_every_copy_of_tested_code_in_the_docs_equals_its_source() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "doc_code.py")], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    copies = sum(page.read_text(encoding="utf-8").count(".. code copied from ") for page in GUIDES)
    assert copies >= 20  # the snippets of every guide, and the sample test project in emulator.rst


def test_guides_have_no_code_or_links_that_only_sphinx_shows() -> None:
    for page in GUIDES:
        text = page.read_text(encoding="utf-8")
        assert ".. literalinclude::" not in text, f"{page.name}: GitHub shows nothing for a literalinclude"
        assert ":doc:`" not in text, f"{page.name}: a :doc: link does not work on GitHub; use its URL"
        for target in re.findall(r"<([^>\s]+)>`__?", text):
            assert target.startswith("https://"), f"{page.name}: relative link {target}"
