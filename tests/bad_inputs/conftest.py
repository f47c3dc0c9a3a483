"""The bad-input and fault suite: every test under this folder is one case (one bad input or one
fault), marked ``bad_input``; the run ends with a line that counts them."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.bad_input)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    counts = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        counts[outcome] = sum(1 for r in terminalreporter.stats.get(outcome, [])
                              if getattr(r, "when", "call") in ("call", "setup") and "bad_input" in r.keywords)
    total = sum(counts.values())
    if total:
        terminalreporter.write_line(
            f"bad-input suite: {total} cases of bad input and faults: {counts['passed']} handled as documented, "
            f"{counts['failed'] + counts['error']} not, {counts['skipped']} skipped")
