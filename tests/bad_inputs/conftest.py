"""The bad-input and fault suite: every test under this folder is one case (one bad input or one
fault), marked ``bad_input``; the run ends with the classes of fault it covered."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.bad_input)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The classes of fault the run covered (a test function each; its parameters are cases of
    that class), per module, with any class that was not handled as documented marked."""
    classes: dict[str, dict[str, list[str]]] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") in ("call", "setup") and "bad_input" in report.keywords:
                module, _, name = report.nodeid.split("[")[0].rpartition("::")
                classes.setdefault(Path(module).name, {}).setdefault(name.removeprefix("test_"), []).append(outcome)
    if not classes:
        return
    total = sum(len(c) for c in classes.values())
    terminalreporter.write_line(f"bad-input suite: {total} classes of bad input and fault, by module "
                                "(x: not handled as documented, s: skipped):")
    for module, found in sorted(classes.items()):
        names = [("x " if {"failed", "error"} & set(o) else "s " if set(o) == {"skipped"} else "") + name
                 for name, o in sorted(found.items())]
        terminalreporter.write_line(f"  {module}: " + ", ".join(names))
