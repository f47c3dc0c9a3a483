"""Deploy-time candidates of the accuracy study (no retraining): adaptation steps and learning
rate at deploy, and enrolling distorted copies of each support image — scored like
``anil-edge evaluate --within-group``, through the exported model and the runtime's episodes.

    anil-edge bench deploytime runs/omniglot/model.onnx [--ways 20] [--tasks 600]
"""

from __future__ import annotations

import argparse

import numpy as np

from anil_edge.data.provenance import located, provenance_split
from anil_edge.data.scoring import score, summarise
from anil_edge.data.tasks import fixed_tasks
from anil_edge.runtime import Backbone
from anil_edge.runtime.adaptation import Adaptation
from anil_edge.runtime.episodes import episode_probabilities, predict_episodes


def distort(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uint8 (H, W, 1) ink-on-white image under a small random rotation, scale and shift."""
    from PIL import Image

    h, w = image.shape[:2]
    img = Image.fromarray(image[..., 0]).rotate(rng.uniform(-10, 10), resample=Image.Resampling.BILINEAR,
                                               translate=tuple(rng.uniform(-2, 2, 2)), fillcolor=255)
    size = int(round(h * rng.uniform(0.9, 1.1)))
    canvas = Image.new("L", (max(h, size), max(w, size)), 255)
    canvas.paste(img.resize((size, size), Image.Resampling.BILINEAR), ((canvas.width - size) // 2,) * 2)
    left = (canvas.width - w) // 2
    return np.asarray(canvas.crop((left, left, left + w, left + h)))[..., None]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--ways", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    backbone = Backbone(args.model, batch_size=512)
    meta = backbone.metadata
    test = provenance_split(located(meta.training.data, backbone.path.parent), None, meta.preprocessing).test
    E = backbone.embed(test.images)
    tasks = fixed_tasks(test, ways=args.ways, shots=1, queries=15, tasks=args.tasks, seed=args.seed,
                        name="test set", within_group=True)
    print(f"# {args.model}: within-group {args.ways}-way 1-shot, {args.tasks} tasks; trained with {meta.adaptation}")
    print("| deploy-time setting | accuracy |\n|---|---|")
    for steps in (0, 1, 5, 10, 20):
        for lr in (0.25, 0.5, 1.0):
            a = Adaptation(lr, steps, meta.adaptation.head_init)
            preds = predict_episodes(E, tasks, args.ways, a, meta.learned_head)
            print(f"| {steps} steps, lr {lr} | {score(preds, tasks)} |")
    rng = np.random.default_rng(0)
    for copies in (4, 8):
        extra = {i: backbone.embed(np.stack([distort(test.images[i], rng) for _ in range(copies)]))
                 for i in np.unique(tasks.support)}
        accuracy = []
        for t in range(args.tasks):
            Es = np.concatenate([np.concatenate([E[i][None], extra[i]]) for i in tasks.support[t]])
            P = episode_probabilities(Es, np.repeat(tasks.support_labels[t], copies + 1), E[tasks.query[t]],
                                      args.ways, meta.adaptation, meta.learned_head)
            accuracy.append((P.argmax(1) == tasks.query_labels[t]).mean())
        print(f"| support image + {copies} distorted copies | {summarise(np.array(accuracy))} |")


if __name__ == "__main__":
    main()
