"""The frozen-prefix cache (anil_edge/train/prefix_cache.py) against the uncached forward: the
same meta-loss and the same gradient for every trainable parameter, within float32 rounding,
for each timm family's split (EfficientNet, MobileNetV3, ResNet) and with a cache too small to
hold every image."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from anil_edge.data.image_set import ImageSet
from anil_edge.data.tasks import fixed_tasks
from anil_edge.runtime.adaptation import Adaptation
from anil_edge.runtime.metadata import Preprocessing
from anil_edge.train.backbones import BackboneConfig
from anil_edge.train.batches import BatchMaker, TaskBatch
from anil_edge.train.engines import fast_meta_loss
from anil_edge.train.model import AnilModel
from anil_edge.train.prefix_cache import PrefixCache
from tests.train.helpers import randomise_bn

SIZE, WAYS, SHOTS, QUERIES = 32, 3, 2, 1
PREP = Preprocessing((SIZE, SIZE), 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
# logits of order 1 on embeddings of squared norm D (the calibrated rules' scale): float32 rounding in
# the embeddings (a different convolution algorithm for the cached tensors' layout, ~5e-7 relative)
# then moves the loss by ~1e-6 relative, where the scale-1 start's logits of order D would move it by D times more
D = 1280
INNER = Adaptation(adaptation_lr=8 / D, adaptation_steps=2, head_scale=2 / D, head_decay=0.2)


def _model(arch: str, frozen: int) -> AnilModel:
    torch.manual_seed(0)
    model = AnilModel(BackboneConfig(3, SIZE, arch=arch, embedding="cosine"), WAYS, freeze_bn=True)
    randomise_bn(model)  # statistics unlike a fresh layer's, so that frozen BN matters
    model.backbone.features.freeze_stages(frozen)
    return model.train()


def _data() -> ImageSet:
    """Six classes, each a colour gradient of its own plus noise: a task the network can tell apart
    (on pure noise the meta-gradient is a near-cancelling sum, which float32 cannot compare)."""
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(6), 4)
    ramp = np.linspace(0, 1, SIZE)[None, :, None, None] * rng.uniform(0, 255, (6, 1, 1, 3))
    images = ramp[labels] + rng.normal(0, 20, (labels.size, SIZE, SIZE, 3))
    return ImageSet(np.clip(images, 0, 255).astype(np.uint8), labels, tuple(f"c{c}" for c in range(6)), ("g",) * 6)


def _loss_and_grads(model: AnilModel, batch: TaskBatch) -> tuple[float, list]:
    model.zero_grad()
    loss, _ = fast_meta_loss(model, batch, INNER)
    loss.backward()
    return loss.item(), [(n, torch.zeros_like(p) if p.grad is None else p.grad.clone())
                         for n, p in model.named_parameters() if p.requires_grad]


@pytest.mark.parametrize("arch, frozen, max_bytes, dtype", [
    ("timm:tf_efficientnet_lite0", 3, 2**30, torch.float32),
    ("timm:resnet18", 2, 2**30, torch.float32),
    ("timm:tf_efficientnet_lite0", 1, 5 * 16 * 16 * 32 * 4, torch.float32),  # room for 5 images' stem output
    # random MobileNetV3-small embeds every image alike (loss ln 3): its meta-gradient is a near-cancelling
    # sum that float32 cannot compare, so its split is checked in float64
    ("timm:mobilenetv3_small_100", 2, 2**30, torch.float64)])
def test_the_cached_prefix_gives_the_same_loss_and_gradients(arch, frozen, max_bytes, dtype):
    model, data = _model(arch, frozen).to(dtype), _data()
    maker = BatchMaker(data, PREP, torch.device("cpu"))
    maker.mean, maker.std = maker.mean.to(dtype), maker.std.to(dtype)
    cache = PrefixCache(model, maker, max_bytes)
    tasks = fixed_tasks(data, ways=WAYS, shots=SHOTS, queries=QUERIES, tasks=2, seed=1)
    labels = [torch.from_numpy(a) for a in (tasks.support_labels, tasks.query_labels)]
    plain = TaskBatch(maker.images(tasks.support), labels[0], maker.images(tasks.query), labels[1])
    for _ in range(2):  # the first call fills the cache, the second reads it
        cached = TaskBatch(cache.images(tasks.support), labels[0], cache.images(tasks.query), labels[1], prefixed=True)
    loss, grads = _loss_and_grads(model, plain)
    loss_c, grads_c = _loss_and_grads(model, cached)
    # float32: rounding differs (the cached tensors' layout picks other convolution kernels), ~1e-6 normwise
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert loss_c == pytest.approx(loss, rel=tol)
    whole = [torch.cat([g.flatten() for _, g in gs]) for gs in (grads, grads_c)]
    assert float((whole[1] - whole[0]).norm() / whole[0].norm()) < tol and whole[0].abs().max() > 0
    used = len(np.unique(np.concatenate([tasks.support.ravel(), tasks.query.ravel()])))
    assert cache.cached_images == (used if max_bytes == 2**30 else 5)  # the small cache holds 5 and computes the rest
