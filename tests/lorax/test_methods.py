"""The learners: what grows, what trains, what stays frozen, and the user backbone hook."""

from __future__ import annotations

import copy

import pytest
import torch

from sensorium.common.errors import SensoriumError
from sensorium.lorax.backbone import (
    VisionTransformer,
    ViTConfig,
    build_backbone,
    count_parameters,
    load_shipped_backbone,
)
from sensorium.lorax.methods import (
    LoraSettings,
    _grown_linear,
    auxiliary_targets,
    build_net,
)

TINY = ViTConfig(image_size=8, patch_size=4, dim=16, depth=2, heads=2)


def tiny_backbone(seed: int = 0) -> VisionTransformer:
    torch.manual_seed(seed)
    return VisionTransformer(TINY)


def images(n: int = 5) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1


def train_step(net, x, labels) -> None:
    optimizer = torch.optim.SGD(net.trainable_parameters(), lr=0.5)
    logits, aux = net(x)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    if aux is not None:
        loss = loss + aux.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_grown_linear_keeps_old_block():
    old = torch.nn.Linear(4, 2)
    new = _grown_linear(old, 8, 4)
    assert new.weight.shape == (4, 8)
    torch.testing.assert_close(new.weight[:2, :4], old.weight)
    torch.testing.assert_close(new.bias[:2], old.bias)


def test_auxiliary_targets():
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    assert auxiliary_targets(labels, tasks=3).tolist() == [0, 0, 0, 0, 1, 2]


def test_lorax_trains_only_the_newest_adapter_and_heads():
    net = build_net("lorax", tiny_backbone(), LoraSettings(rank=2))
    net.begin_task()
    x = images()
    train_step(net, x, torch.tensor([0, 1, 0, 1, 0]))
    net.begin_task()
    assert net.classifier.weight.shape == (4, 2 * TINY.dim)
    assert net.aux_head is not None
    assert len(net.targeted) == TINY.depth
    trainable = {id(p) for p in net.trainable_parameters()}
    names = [n for n, p in net.named_parameters() if id(p) in trainable]
    assert all(".task1." in n or n.startswith(("classifier", "aux_head")) for n in names)
    before = copy.deepcopy(net.state_dict())
    for _ in range(2):
        train_step(net, x, torch.tensor([2, 3, 0, 1, 3]))
    after = net.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed, "nothing trained"
    assert all(".task1." in k or k.startswith(("classifier", "aux_head")) for k in changed)
    assert any(".task1." in k for k in changed)
    # The extractors' features: task0's adapter (frozen) then task1's.
    net.eval()
    with torch.no_grad():
        frozen = net.frozen_features(x)
        both = net.features(x)
    assert frozen.shape == (5, TINY.dim) and both.shape == (5, 2 * TINY.dim)
    torch.testing.assert_close(both[:, : TINY.dim], frozen)
    # Handing in the frozen features gives the same logits as computing them.
    with torch.no_grad():
        torch.testing.assert_close(net(x, frozen)[0], net(x)[0])
    assert net.peft.active_adapter == "task1"


def test_lorax_adapter_share_of_backbone_is_small():
    backbone = VisionTransformer(ViTConfig())
    total = count_parameters(backbone)
    net = build_net("lorax", backbone, LoraSettings())
    net.begin_task()
    share = sum(p.numel() for p in net.extractor_parameters()) / total
    assert 0 < share < 0.03


def test_lora_targets_matching_nothing_is_an_error():
    net = build_net("lorax", tiny_backbone(), LoraSettings(targets=r".*\.nothing_here"))
    with pytest.raises(SensoriumError, match="match no layer"):
        net.begin_task()
    with pytest.raises(SensoriumError, match="rank"):
        LoraSettings(rank=0)
    with pytest.raises(SensoriumError, match="targets"):
        LoraSettings(targets="(")


def test_expandable_copies_the_last_extractor_and_freezes_old_ones():
    net = build_net("expandable", tiny_backbone(), LoraSettings())
    net.begin_task()
    train_step(net, images(), torch.tensor([0, 1, 0, 1, 0]))
    net.begin_task()
    first, second = net.extractors
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b) and not a.requires_grad and b.requires_grad
    assert net.total_feature_dim == 2 * TINY.dim
    assert set(map(id, net.extractor_parameters())) == set(map(id, second.parameters()))


@pytest.mark.parametrize("method", ["finetune", "replay", "joint", "linear"])
def test_single_backbone_methods(method):
    net = build_net(method, tiny_backbone(), LoraSettings())
    net.begin_task()
    net.begin_task()
    assert net.classifier.weight.shape == (4, TINY.dim) and net.aux_head is None
    extractor = net.extractor_parameters()
    assert (len(extractor) == 0) == (method == "linear")
    with pytest.raises(SensoriumError):
        build_net("nonsense", tiny_backbone(), LoraSettings())


def test_shipped_backbone_loads():
    vit = load_shipped_backbone()
    assert vit.image_size == 32
    with torch.no_grad():
        assert vit(torch.zeros(2, 3, 32, 32)).shape == (2, vit.feature_dim)


def test_user_backbone_from_a_file_with_weights(tmp_path):
    source = tmp_path / "mynet.py"
    source.write_text(
        "import torch\n"
        "def make():\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),"
        " torch.nn.Flatten())\n"
    )
    torch.manual_seed(3)
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    )
    torch.save(reference.state_dict(), tmp_path / "w.pt")
    net = build_backbone(f"{source}:make", tmp_path / "w.pt", image_size=16)
    assert net.feature_dim == 4 and net.image_size == 16
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(net(x), reference(x))
    for spec, message in [
        ("nocolon", "expected"),
        (f"{tmp_path}/missing.py:make", "does not exist"),
        (f"{source}:absent", "no function"),
        ("no_such_module_here:make", "cannot be imported"),
    ]:
        with pytest.raises(SensoriumError, match=message):
            build_backbone(spec)
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(SensoriumError, match="unreadable"):
        build_backbone(f"{source}:make", tmp_path / "bad.pt")
    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(SensoriumError, match="do not fit"):
        build_backbone(f"{source}:make", tmp_path / "wrong.pt")
    with pytest.raises(SensoriumError, match="goes with a user backbone"):
        build_backbone("vit", tmp_path / "w.pt")
