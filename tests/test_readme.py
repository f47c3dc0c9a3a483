"""The README's Python example runs as written, against a small exported model."""

from __future__ import annotations

import os

import pytest

Image = pytest.importorskip("PIL.Image")

from tests.helpers import readme_example_files, readme_snippet  # noqa: E402


def test_the_runtime_example_runs_as_written(model_path, tmp_path, capsys):
    pytest.importorskip("onnx")
    readme_example_files(model_path, tmp_path)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(readme_snippet("## Use it in an app"), {})  # every name it uses, it defines
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out.split()
    assert len(out) >= 4 and (tmp_path / "products.npz").is_file()


def test_every_relative_link_of_the_readme_and_docs_resolves():
    """The README's reference table and the docs' links point at files that exist."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    missing = []
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                missing.append(f"{page.relative_to(root)} -> {target}")
    assert missing == []


def test_the_readme_first_screen_gets_a_newcomer_going():
    """Set-up, activation and the photo quickstart come first; reference material is in docs/."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    order = [text.index(s) for s in ("make setup", "source .venv/bin/activate", "## Quickstart: photos",
                                     "## Use it in an app", "## Reference")]
    assert order == sorted(order) and text.index("## Quickstart: photos") < 2500
    assert len(text.splitlines()) < 200
