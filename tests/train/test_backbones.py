"""Our backbone declarations compute what learn2learn's modules compute, and they script."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
l2l = pytest.importorskip("learn2learn")

from anil_edge.train.backbones import BackboneConfig, CNN4Backbone, build_backbone
from tests.tolerances import assert_f32_close, conv_terms
from tests.train.helpers import randomise_bn


def _load_from_l2l(ours, theirs, prefix: str = "") -> None:
    state = {prefix + k: v for k, v in theirs.state_dict().items()}
    missing, unexpected = ours.load_state_dict(state, strict=True)
    assert not missing and not unexpected


@pytest.mark.parametrize("train_mode", [False, True])
def test_conv4_equals_learn2learn_cnn4backbone(train_mode):
    torch.manual_seed(0)
    theirs = l2l.vision.models.CNN4Backbone(hidden_size=16, layers=4, channels=3)
    randomise_bn(theirs, mean=0.3, bias=True)
    ours = CNN4Backbone(BackboneConfig(3, 32, hidden=16, blocks=4))
    _load_from_l2l(ours, theirs, "features.")
    theirs.train(train_mode), ours.train(train_mode)
    x = torch.randn(6, 3, 32, 32)
    assert_f32_close(ours(x), theirs(x), terms=conv_terms(16, 4))


def test_conv4_stride_equals_learn2learn_omniglot_cnn():
    torch.manual_seed(0)
    theirs = l2l.vision.models.OmniglotCNN(output_size=5, hidden_size=16, layers=4).eval()
    randomise_bn(theirs, mean=0.3, bias=True)
    ours = CNN4Backbone(BackboneConfig(1, 28, hidden=16, blocks=4, arch="conv4-stride")).eval()
    _load_from_l2l(ours, theirs.base, "features.")
    x = torch.randn(5, 1, 28, 28)
    assert_f32_close(ours(x), theirs.features(x), terms=conv_terms(16, 4))
    assert ours.embedding_dim == 16


def test_resnet12_equals_learn2learn_resnet12backbone():
    torch.manual_seed(0)
    theirs = l2l.vision.models.ResNet12Backbone(dropblock_dropout=0.0, channels=3).eval()
    randomise_bn(theirs, mean=0.3, bias=True)
    ours = build_backbone(BackboneConfig(3, 84, arch="resnet12")).eval()
    _load_from_l2l(ours, theirs)
    x = torch.randn(2, 3, 84, 84)
    with torch.no_grad():
        assert_f32_close(ours(x), theirs(x), terms=conv_terms(640, 12))
    assert ours.embedding_dim == 640


@pytest.mark.parametrize("channels,size,dim", [(1, 28, 64), (3, 32, 256), (3, 84, 1600)])
def test_conv4_embedding_sizes(channels, size, dim):
    assert CNN4Backbone(BackboneConfig(channels, size)).embedding_dim == dim


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("arch", ["conv4", "conv4-stride", "resnet12"])
@pytest.mark.parametrize("norm", ["batch", "group"])
def test_backbones_script_and_trace(arch, norm):
    torch.manual_seed(0)
    size = 32 if arch == "resnet12" else 28
    model = build_backbone(BackboneConfig(1, size, hidden=8, blocks=4, norm=norm, groups=4, arch=arch)).eval()
    x = torch.randn(3, 1, size, size)
    scripted, traced = torch.jit.script(model), torch.jit.trace(model, x)
    other = torch.randn(7, 1, size, size)  # another batch size than the trace's
    torch.testing.assert_close(scripted(other), model(other))
    torch.testing.assert_close(traced(other), model(other))


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("arch", ["conv4", "conv4-stride"])
def test_cosine_embeddings_have_the_learned_norm_and_learn_it(arch):
    torch.manual_seed(0)
    model = build_backbone(BackboneConfig(1, 28, hidden=8, arch=arch, embedding="cosine"))
    x = torch.randn(5, 1, 28, 28)
    E = model(x)
    assert E.shape == (5, model.embedding_dim) and model.embedding_dim == model.features.embedding_dim
    torch.testing.assert_close(E.norm(dim=1), torch.full((5,), model.embedding_dim ** 0.5))  # starts at sqrt(D)
    E.sum().backward()
    assert model.log_scale.grad is not None and model.log_scale.grad != 0
    with torch.no_grad():
        model.log_scale.fill_(1.5)
    torch.testing.assert_close(model(x).norm(dim=1), torch.full((5,), float(torch.tensor(1.5).exp())))
    raw = build_backbone(BackboneConfig(1, 28, hidden=8, arch=arch))
    raw.load_state_dict(model.features.state_dict())
    model.eval(), raw.eval()
    expected = raw(x) / raw(x).norm(dim=1, keepdim=True) * float(torch.tensor(1.5).exp())
    torch.testing.assert_close(model(x), expected)
    scripted = torch.jit.script(model.eval())
    torch.testing.assert_close(scripted(x), model(x))


def test_unknown_embedding_is_an_error():
    from anil_edge.errors import InputError

    with pytest.raises(InputError, match="embedding must be one of"):
        BackboneConfig(embedding="l2")
