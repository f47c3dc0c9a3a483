"""Tasks as image indices, and fixed evaluation tasks drawn with numpy alone.

A task is ``ways`` classes with ``shots`` support and ``queries`` query images each, given as
indices into an :class:`ImageSet` (class-major, labels in [0, ways)), so a whole batch of
tasks gathers its pixels or cached embeddings with one indexing operation. Training draws
its task stream through learn2learn (:mod:`.task_sampler`); evaluation draws a fixed, seeded
set here, with the same distribution (classes uniformly without replacement, then images
uniformly without replacement within each class) and without torch, so that a device install
can rebuild the exact tasks a number was measured on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .image_set import ImageSet


@dataclass(frozen=True, eq=False)
class TaskIndices:
    """A meta-batch of T tasks as indices into an :class:`ImageSet`, labels in [0, ways)."""

    support: np.ndarray  # (T, ways * shots) image indices, class-major
    support_labels: np.ndarray  # (T, ways * shots)
    query: np.ndarray  # (T, ways * queries) image indices, class-major
    query_labels: np.ndarray  # (T, ways * queries)


def fixed_tasks(data: ImageSet, *, ways: int, shots: int, queries: int, tasks: int, seed: int,
                name: str = "evaluation set", within_group: bool = False,
                distinct_drawers: bool = False) -> TaskIndices:
    """The same ``tasks`` tasks for a given seed, on any machine, with numpy alone.

    ``within_group``: all classes of a task come from one group (an Omniglot alphabet, a Unicode
    script, a folder's parent) — the harder test of Lake et al. (2015), where a character must
    be told from its own alphabet's look-alikes. Each task picks one of the groups that have at
    least ``ways`` classes, uniformly, then ``ways`` of its classes.

    ``distinct_drawers`` (data that records drawers): as in Lake et al.'s one-shot runs, a task
    picks ``shots`` drawers; every class's support images are theirs (one each) and its queries
    come from the other drawers, so no query was drawn by a person whose support image it sees.
    """
    check_task_shape(data, ways, shots, queries, name)
    if tasks < 1:
        raise InputError(f"{name}: expected at least 1 task, found {tasks}")
    drawers = data.drawers
    if distinct_drawers and drawers is None:
        raise InputError(f"{name}: support and query from different drawers needs data that records who drew each "
                         "image (Omniglot file names <character>_<drawer>.png); this data records none")
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(data.labels == c) for c in range(data.n_classes)]
    pools = _group_pools(data, ways, name) if within_group else [np.arange(data.n_classes)]
    per_class = shots + queries
    idx = np.empty((tasks, ways, per_class), np.int64)
    for t in range(tasks):
        pool = pools[rng.integers(len(pools))]
        classes = rng.choice(pool, ways, replace=False)
        if distinct_drawers and drawers is not None:
            idx[t] = _by_drawers(data, drawers, members, classes, shots, queries, rng, name)
            continue
        for k, c in enumerate(classes):
            idx[t, k] = rng.choice(members[c], per_class, replace=False)
    lab = np.broadcast_to(np.arange(ways)[None, :, None], idx.shape)
    flat = lambda a: np.ascontiguousarray(a).reshape(tasks, -1).astype(np.int64)  # noqa: E731
    return TaskIndices(flat(idx[:, :, :shots]), flat(lab[:, :, :shots]), flat(idx[:, :, shots:]),
                       flat(lab[:, :, shots:]))


def _by_drawers(data: ImageSet, drawers: np.ndarray, members: list[np.ndarray], classes: np.ndarray, shots: int,
                queries: int, rng: np.random.Generator, name: str) -> np.ndarray:
    """(ways, shots + queries) indices: support from ``shots`` drawers common to ``classes``,
    queries from each class's other drawers."""
    drawn = [drawers[members[c]] for c in classes]
    common = np.array(sorted(set.intersection(*(set(d.tolist()) for d in drawn))), np.int64)
    if common.size < shots:
        raise InputError(f"{name}: {shots}-shot tasks with distinct drawers need {shots} drawers who drew every class "
                         f"of the task; classes {[data.class_names[c] for c in classes[:3]]}... share {common.size}")
    support_drawers = rng.choice(common, shots, replace=False)
    rows = []
    for c, d in zip(classes, drawn):
        support = [rng.choice(members[c][d == s]) for s in support_drawers]
        others = members[c][~np.isin(d, support_drawers)]
        if others.size < queries:
            raise InputError(f"{name}: class {data.class_names[c]} has {others.size} images by drawers other than "
                             f"its support's; expected at least {queries} queries")
        rows.append(np.concatenate([support, rng.choice(others, queries, replace=False)]))
    return np.stack(rows)


def _group_pools(data: ImageSet, ways: int, name: str) -> list[np.ndarray]:
    """The classes of each group that has at least ``ways`` of them."""
    groups: dict[str, list[int]] = {}
    for c, group in enumerate(data.groups):
        groups.setdefault(group, []).append(c)
    pools = [np.array(classes) for _, classes in sorted(groups.items()) if len(classes) >= ways]
    if not pools:
        largest = max(len(c) for c in groups.values())
        raise InputError(f"{name}: within-group {ways}-way tasks need a group with {ways} classes; the largest of "
                         f"its {len(groups)} groups has {largest}")
    return pools


def check_task_shape(data: ImageSet, ways: int, shots: int, queries: int, name: str, *, copies: int = 1) -> None:
    """InputError unless ``data`` can supply ``ways``-way tasks of ``shots`` + ``queries`` images
    (``copies``: each class stands for that many, as rotations make them)."""
    problems = []
    if ways < 2 or shots < 1 or queries < 1:
        problems.append(f"expected ways >= 2, shots >= 1, queries >= 1, found {ways}, {shots}, {queries}")
    if data.n_classes * copies < ways:
        problems.append(f"{ways}-way tasks need {ways} classes, found {data.n_classes * copies} (set fewer ways: "
                        "--ways)")
    sizes = data.class_sizes()
    small = np.flatnonzero(sizes < shots + queries)
    if small.size:
        names = ", ".join(f"{data.class_names[c]} ({sizes[c]})" for c in small[:5])
        fix = ("add images to these classes or remove them" if shots + queries == 2 else
               "add images to these classes, remove them, or lower --shots/--queries")
        problems.append(
            f"{small.size} class(es) have fewer than shots + queries = {shots + queries} images: {names} (a task "
            f"takes {shots} support and {queries} query image(s) of each class: {fix})"
        )
    if problems:
        raise InputError(f"{name}: cannot draw tasks: " + "; ".join(problems))
