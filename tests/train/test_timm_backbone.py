"""timm backbones: built as ANIL backbones, configured with a clear error, fine-tuned with frozen
BatchNorm statistics, frozen stages and a smaller learning rate, and usable with no meta-training."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("learn2learn")

from anil_edge.errors import InputError
from anil_edge.train.backbones import ScaledNormalized, timm_part
from anil_edge.train.checkpoint import load_checkpoint
from anil_edge.train.config import TrainConfig
from anil_edge.train.model import build_model, parameter_groups
from anil_edge.train.preprocessing import decode_preprocessing
from anil_edge.train.timm_catalog import SUPPORTED
from tests.train.helpers import tiny_config

DIMS = {"tf_efficientnet_lite0": 1280, "mobilenetv3_small_100": 1024, "mobilenetv3_large_100": 1280, "resnet18": 512}


def _config(name="mobilenetv3_small_100", **changes) -> TrainConfig:
    return TrainConfig(backbone=f"timm:{name}", channels=3, input_size=32, ways=3, **changes)


@pytest.mark.parametrize("name", SUPPORTED)
def test_every_supported_model_embeds_with_timms_pooled_features(name):
    torch.manual_seed(0)
    model = build_model(_config(name, embedding="raw")).eval()
    x = torch.randn(2, 3, 32, 32)
    net = timm_part(model.backbone)
    assert net is not None and model.embedding_dim == DIMS[name]
    expected = net.net.forward_head(net.net.forward_features(x), pre_logits=True)
    torch.testing.assert_close(model.forward_features(x), expected, rtol=0, atol=0)
    assert model(x).shape == (2, 3)


def test_the_preprocessing_comes_from_the_pretrained_config():
    lite0 = decode_preprocessing(_config("tf_efficientnet_lite0"))
    assert (lite0.resize, lite0.crop, lite0.crop_pct) == ("bicubic", "center", 0.875)
    assert decode_preprocessing(_config("resnet18")).crop_pct == 0.95
    mine = decode_preprocessing(_config("resnet18", crop_pct=1.0, resize="bilinear"))
    assert (mine.crop_pct, mine.resize) == (1.0, "bilinear")  # set explicitly: the config wins
    assert decode_preprocessing(TrainConfig()).resize == "lanczos"


@pytest.mark.parametrize("changes, message", [
    (dict(backbone="timm:vit_base_patch16_224", channels=3, input_size=224), "is not supported; expected one of timm:"),
    (dict(backbone="timm:resnet18", input_size=64), "takes RGB images: expected channels=3"),
    (dict(backbone="timm:resnet18", channels=3, input_size=16), "input_size 16 is too small"),
    (dict(backbone="timm:resnet18", channels=3, input_size=64, norm="group"), "norm must be 'batch'"),
    (dict(pretrained="efficientnet-lite0"), "pretrained needs a timm:NAME backbone"),
    (dict(freeze_stages=2), "freeze_stages needs a timm:NAME backbone"),
    (dict(normalization="backbone"), "needs a timm:NAME backbone"),
    (dict(backbone="resnet50"), "backbone must be one of"),
    (dict(backbone_lr_scale=2.0), "backbone_lr_scale must lie in [0, 1]"),
    (dict(iterations=-1), "iterations must be >= 0"),
    (dict(backbone="timm:resnet18", channels=3, input_size=32, freeze_stages=2, prefix_cache=True),
     "prefix_cache needs frozen BatchNorm .* augment off"),
])
def test_configuration_errors_say_what_was_expected(changes, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TrainConfig(**changes)


def test_frozen_batchnorm_keeps_its_statistics_in_training():
    model = build_model(_config(freeze_bn=True)).train()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(m.training for m in norms) and model.head.training
    before = [m.running_mean.clone() for m in norms]
    model.forward_features(torch.randn(4, 3, 32, 32) * 3 + 1)
    assert all(torch.equal(a, m.running_mean) for a, m in zip(before, norms))
    assert all(m.training for m in build_model(_config()).train().modules()
               if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))  # no pretrained weights: not frozen
    assert _config(pretrained="x.pt").freezes_bn and not _config(pretrained="x.pt", freeze_bn=False).freezes_bn


def test_frozen_stages_get_no_gradient_and_the_rest_a_scaled_learning_rate():
    config = _config(freeze_stages=2, backbone_lr_scale=0.1, meta_lr=0.01)
    model = build_model(config, pretrained=True)
    net = timm_part(model.backbone)
    stem, first, second = net.stages()[:3]
    assert not any(p.requires_grad for module in stem + first for p in module.parameters())
    assert all(p.requires_grad for module in second for p in module.parameters())
    head_group, backbone_group = parameter_groups(model, config)
    assert backbone_group["lr"] == pytest.approx(0.001) and "lr" not in head_group
    head_ids = {id(p) for p in head_group["params"]}
    assert head_ids == {id(p) for p in model.head.parameters()} | {id(model.backbone.log_scale)}
    assert isinstance(model.backbone, ScaledNormalized)
    assert len(parameter_groups(model, _config())) == 1  # scale 1: one group, as checkpoints before it
    with pytest.raises(InputError, match=r"freeze_stages must lie in \[0, 7\]"):
        _config(freeze_stages=8)  # refused with the configuration, before any data is loaded


def _rgb_split():
    from anil_edge.data.splits import split_by_group
    from tests.train.helpers import glyph_set

    glyphs = glyph_set(n_classes=12, per_class=3)
    rgb = glyphs.images.repeat(3, axis=-1)
    import numpy as np
    from PIL import Image

    big = np.stack([np.asarray(Image.fromarray(im).resize((32, 32))) for im in rgb])
    from anil_edge.data.image_set import ImageSet

    data = ImageSet(big, glyphs.labels, glyphs.class_names, glyphs.groups)
    return split_by_group(data, validation=0.3, test=0.2, seed=0)


def test_zero_iterations_saves_the_backbone_as_it_is(tmp_path):
    from anil_edge.train.trainer import train

    split = _rgb_split()
    config = tiny_config(tmp_path, backbone="timm:mobilenetv3_small_100", channels=3, input_size=32, iterations=0,
                         rotations=False, freeze_bn=True)
    torch.manual_seed(0)
    initial = build_model(config).state_dict()
    result = train(config, split)
    saved = load_checkpoint(tmp_path / "best.pt")
    assert saved["iteration"] == 0 and (tmp_path / "last.pt").is_file()
    assert result.best_validation == saved["best_validation"] >= 0
    for key, value in initial.items():  # the seeded initial weights, untouched
        torch.testing.assert_close(saved["model"][key], value, rtol=0, atol=0)


def test_training_with_the_prefix_cache_runs_on_cached_activations(tmp_path):
    from anil_edge.train.trainer import train

    config = tiny_config(tmp_path, backbone="timm:tf_efficientnet_lite0", channels=3, input_size=32, iterations=2,
                         eval_every=2, rotations=False, freeze_bn=True, freeze_stages=3, augment=False,
                         prefix_cache=True)
    result = train(config, _rgb_split())
    assert load_checkpoint(tmp_path / "last.pt")["iteration"] == 2 and 0 <= result.best_validation <= 1
