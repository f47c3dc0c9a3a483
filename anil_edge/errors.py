"""The exception hierarchy shared by every stage of anil-edge.

Every error says what was found and what was expected. Catch :class:`AnilEdgeError`
to handle them all; the subclasses say which side is at fault.
"""

from __future__ import annotations


class AnilEdgeError(Exception):
    """Base class of every error anil-edge raises on purpose."""


class ModelError(AnilEdgeError):
    """A model file is missing, unreadable, corrupted, or lacks anil-edge's metadata."""


class InputError(AnilEdgeError, ValueError):
    """Images, embeddings or labels passed by the caller are not what was expected."""


class StateError(AnilEdgeError):
    """An enrollment state is unusable: corrupted, of another backbone, or empty."""


class NotEnrolledError(StateError):
    """A prediction was asked for before any class was enrolled."""


class MissingDependencyError(AnilEdgeError, ImportError):
    """An optional dependency is needed for this call; the message says what to install."""


def raise_if_problems(problems: list[str], error: type[AnilEdgeError], what: str) -> None:
    """Raise ``error`` listing every problem found, or return when there are none.

    Collecting every mismatch before raising lets the caller fix them all at once.
    """
    if not problems:
        return
    if len(problems) == 1:
        raise error(f"{what}: {problems[0]}")
    listed = "\n".join(f"  - {p}" for p in problems)
    raise error(f"{what}: {len(problems)} problems:\n{listed}")


def require(module: str, extra: str):
    """Import an optional dependency or raise :class:`MissingDependencyError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"this needs the '{module}' package, which is not installed ({exc}); "
            f"install it with: pip install 'anil-edge[{extra}]'"
        ) from exc
