"""Open-set rejection on held-out classes, through the exported ONNX model and the runtime:
which score separates queries of enrolled classes from queries of never-enrolled ones, and how
many blank, noise and out-of-domain images each rule rejects.

    anil-edge bench openset runs/omniglot/model.onnx [--episodes 600] [--ways 5] [--shots 1]

Scores compared (higher = more like an enrolled class): the adapted head's top softmax
probability (the old ``threshold=`` rule), its top logit, the negative distance to the nearest
class mean, and the cosine similarity to the nearest class mean (the runtime's open-set score).
AUROC and the false-accept rate at 95% true-accept need no threshold; the operating points use
the documented softmax threshold (0.6) and the thresholds calibrated at export.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np

from anil_edge.data.provenance import located, provenance_split
from anil_edge.runtime import Backbone
from anil_edge.runtime.episodes import class_means, fit_head
from anil_edge.runtime.head import logits, predict_proba
from anil_edge.runtime.open_set import cosine_to_means

SOFTMAX_THRESHOLD = 0.6  # the threshold the README documented before open-set rejection


def scores(E_query: np.ndarray, E_support: np.ndarray, y_support: np.ndarray, ways: int, backbone) -> dict:
    """Every candidate score of each query (Q,) for one enrolled set."""
    meta = backbone.metadata
    W, b = fit_head(E_support, y_support, ways, meta.adaptation, meta.learned_head)
    means = class_means(E_support, y_support, ways)
    distances = np.linalg.norm(E_query[:, None, :] - means[None], axis=-1)
    return {"softmax probability": predict_proba(E_query, W, b).max(1), "max logit": logits(E_query, W, b).max(1),
            "−distance to nearest mean": -distances.min(1),
            "cosine to nearest mean (open-set score)": cosine_to_means(E_query, means).max(1)}


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """P(score of a known query > score of an unknown one), ties counted half (Mann-Whitney U)."""
    values, where, counts = np.unique(np.concatenate([known, unknown]), return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    ranks = ((last - counts + 1 + last) / 2)[where]  # 1-based, tied values share their mean rank
    return float((ranks[: known.size].sum() - known.size * (known.size + 1) / 2) / (known.size * unknown.size))


def out_of_domain(prep, n: int, seed: int) -> dict[str, np.ndarray]:
    """uint8 (n, H, W, C) images a model of characters or objects was never meant to see."""
    rng = np.random.default_rng(seed)
    h, w = prep.input_size
    c = prep.channels
    yy, xx = np.mgrid[0:h, 0:w]
    shapes = np.full((n, h, w, c), 255, np.uint8)
    for k in range(n):  # a filled disc or rectangle of a random grey/colour on white
        cy, cx, r = rng.integers(h // 4, 3 * h // 4), rng.integers(w // 4, 3 * w // 4), rng.integers(h // 8, h // 3)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r if k % 2 else (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
        shapes[k][mask] = rng.integers(0, 200, c)
    smooth = rng.normal(size=(n, h // 4 + 1, w // 4 + 1, c))
    photo = np.kron(smooth, np.ones((1, 4, 4, 1)))[:, :h, :w]  # blocky low-frequency "photos"
    return {
        "blank white": np.full((n, h, w, c), 255, np.uint8), "blank black": np.zeros((n, h, w, c), np.uint8),
        "uniform noise": rng.integers(0, 256, (n, h, w, c), dtype=np.uint8),
        "gaussian noise": np.clip(rng.normal(128, 60, (n, h, w, c)), 0, 255).astype(np.uint8),
        "shapes": shapes,
        "checkerboard": np.broadcast_to((((yy // 4 + xx // 4) % 2) * 255).astype(np.uint8)[None, ..., None],
                                        (n, h, w, c)).copy(),
        "smooth 'photos'": np.clip(128 + 50 * photo, 0, 255).astype(np.uint8),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an .onnx model exported by anil-edge (with its data record)")
    parser.add_argument("--data", nargs="+", help="data sources if not where the model says")
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    backbone = Backbone(args.model, device="cpu", batch_size=256)
    meta = backbone.metadata
    test = provenance_split(located(meta.training.data, backbone.path.parent), args.data, meta.preprocessing).test
    E = backbone.embed(test.images)
    ood = {name: backbone.embed(images) for name, images in out_of_domain(meta.preprocessing, 50, args.seed).items()}
    rng = np.random.default_rng(args.seed)
    members = [np.flatnonzero(test.labels == c) for c in range(test.n_classes)]
    known: dict[str, list[np.ndarray]] = {}
    unknown: dict[str, list[np.ndarray]] = {}
    rejected: dict[tuple[str, str], list[np.ndarray]] = {}
    for _ in range(args.episodes):
        classes = rng.choice(test.n_classes, 2 * args.ways, replace=False)
        picks = [rng.choice(members[c], args.shots + args.queries, replace=False) for c in classes]
        support = np.concatenate([p[: args.shots] for p in picks[: args.ways]])
        y = np.repeat(np.arange(args.ways), args.shots)
        known_q = np.concatenate([p[args.shots:] for p in picks[: args.ways]])
        unknown_q = np.concatenate([p[args.shots:] for p in picks[args.ways:]])
        for store, Eq in ((known, E[known_q]), (unknown, E[unknown_q])):
            for name, s in scores(Eq, E[support], y, args.ways, backbone).items():
                store.setdefault(name, []).append(s)
        for kind, Eo in ood.items():
            for name, s in scores(Eo, E[support], y, args.ways, backbone).items():
                rejected.setdefault((kind, name), []).append(s)
    known_s = {k: np.concatenate(v) for k, v in known.items()}
    unknown_s = {k: np.concatenate(v) for k, v in unknown.items()}
    print(f"# {args.model}: {test.n_classes} held-out classes, {args.episodes} episodes of {args.ways}-way "
          f"{args.shots}-shot enrollment, {args.queries} known + {args.queries * args.ways} unknown queries each; "
          f"{platform.processor() or platform.machine()}")
    print("| score | AUROC | false-accept at 95% true-accept |")
    print("|---|---|---|")
    for name in known_s:
        at95 = np.quantile(known_s[name], 0.05)
        print(f"| {name} | {auroc(known_s[name], unknown_s[name]):.4f} | {100 * (unknown_s[name] >= at95).mean():.2f}% |")
    points = [("softmax probability", f"softmax ≥ {SOFTMAX_THRESHOLD}", SOFTMAX_THRESHOLD)]
    if meta.open_set is not None:
        points += [("cosine to nearest mean (open-set score)", f"reject={r:g} (cosine ≥ {t:.3f})", t)
                   for r, t in meta.open_set.thresholds.items()]
    kinds = list(ood)
    print("\n| operating point | known accepted | unknown accepted (false-accept) | "
          + " | ".join(f"{k} rejected" for k in kinds) + " |")
    print("|---|---|---|" + "---|" * len(kinds))
    for name, label, t in points:
        cells = [f"{100 * (np.concatenate(rejected[(k, name)]) < t).mean():.1f}%" for k in kinds]
        print(f"| {label} | {100 * (known_s[name] >= t).mean():.1f}% | {100 * (unknown_s[name] >= t).mean():.1f}% | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
