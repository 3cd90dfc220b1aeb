"""Proxies that train (short_train) or read a trained supernet (supernet), on tiny real data."""

import dataclasses
import math

import pytest
import torch
from omegaconf import OmegaConf

from arch_search.proxies import ProxyContext, get_proxy, list_proxies
from arch_search.trained_proxies import ShortTrainProxy
from experiments.proxy_data import proxy_context
from experiments.search import SearchConfig, exporter, search_space
from posenets.checkpoint import save_checkpoint
from posenets.io import load_standalone
from search_space import ArchConfigError, get_preset
from search_space.resolution import IDENTITY, ResolutionRule
from search_space.space import LitePoseSpace, largest_member_of
from supernet import LitePoseSupernet
from supernet.checkpoint import supernet_state

SIZE = 64


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> ProxyContext:
    dataset = OmegaConf.create(
        {
            "name": "synthetic",
            "root": str(tmp_path_factory.mktemp("data")),
            "train_split": "train",
            "val_split": "val",
            "synthetic": {"image_size": SIZE, "num_train": 8, "num_val": 3, "max_persons": 2},
        }
    )
    loss = OmegaConf.create(
        {"heatmap_weights": [1.0, 1.0], "push_weight": 0.05, "pull_weight": 0.05}
    )
    return proxy_context(dataset, seed=0, loss=loss)  # members are built at SIZE


def test_registered():
    assert {"short_train", "supernet"} <= set(list_proxies())


def test_short_train_scores_are_finite_and_reproducible(context):
    config = get_preset("litepose_xs", input_size=SIZE)
    proxy = get_proxy("short_train", steps=2, batch_size=2, eval_images=2, eval_batches=1)
    first = proxy.score(config, context)
    assert math.isfinite(first) and first < 0  # negative validation loss
    assert proxy.score(config, context) == first
    ap = get_proxy("short_train", steps=2, batch_size=2, metric="AP", eval_images=2)
    assert 0.0 <= ap.score(config, context) <= 1.0


def test_training_lowers_the_validation_loss(context):
    config = get_preset("litepose_xs", input_size=SIZE)
    proxy = ShortTrainProxy(steps=1, batch_size=2, eval_images=2, eval_batches=1)
    untrained = proxy.evaluate(proxy.train(config, context), config, context)
    proxy.steps = 12
    trained = proxy.evaluate(proxy.train(config, context), config, context)
    assert set(trained) == {"AP", "AP50", "loss"}
    assert trained["loss"] < untrained["loss"]


def test_supernet_proxy_scores_members_and_refuses_others(context, tmp_path):
    torch.manual_seed(0)
    net = LitePoseSupernet(get_preset("litepose_supernet", input_size=SIZE))
    checkpoint = save_checkpoint(
        {"model": net.state_dict(), **supernet_state(net)}, tmp_path / "supernet.pt"
    )
    proxy = get_proxy(
        "supernet", checkpoint=str(checkpoint), recalibration_batches=1, batch_size=2,
        eval_images=2, eval_batches=1, metric="loss",
    )  # fmt: skip
    member = dataclasses.replace(LitePoseSpace().smallest(), input_size=SIZE)
    assert math.isfinite(proxy.score(member, context))
    stranger = dataclasses.replace(get_preset("litepose_l", input_size=SIZE), stem_channels=96)
    with pytest.raises(ArchConfigError):
        proxy.score(stranger, context)


def test_search_exports_the_scored_supernet_weights(context, tmp_path):
    """With the supernet proxy a search's export carries the recalibrated subnet it scored."""
    torch.manual_seed(1)
    net = LitePoseSupernet(get_preset("litepose_supernet", input_size=SIZE))
    checkpoint = save_checkpoint(
        {"model": net.state_dict(), **supernet_state(net)}, tmp_path / "supernet.pt"
    )
    proxy = get_proxy("supernet", checkpoint=str(checkpoint), recalibration_batches=1)
    member = dataclasses.replace(LitePoseSpace().smallest(), input_size=SIZE)
    exporter(proxy, context)(member, tmp_path / "export")
    model, config = load_standalone(tmp_path / "export")
    assert config == member and (tmp_path / "export" / "model.onnx").exists()
    expected = proxy.subnet(member, context).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not torch.all(bn.running_var == 1)  # recalibrated, not the initial statistics


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="checkpoint="):
        get_proxy("supernet")
    with pytest.raises(ValueError, match="metric="):
        get_proxy("short_train", metric="accuracy")
    with pytest.raises(ValueError, match="context.train_samples"):
        get_proxy("short_train").score(get_preset("litepose_xs"), ProxyContext())


def _checkpoint_with_space(path, resolutions=(SIZE,)) -> tuple[str, LitePoseSpace]:
    """A tiny untrained supernet checkpoint that stores a narrowed space (two widths)."""
    torch.manual_seed(0)
    largest = get_preset("litepose_supernet", input_size=max(resolutions))
    net = LitePoseSupernet(largest)
    space = LitePoseSpace(net.largest, width_multipliers=(1.0, 0.5), resolutions=resolutions)
    save_checkpoint({"model": net.state_dict(), **supernet_state(net, space)}, path)
    return str(path), space


def test_the_checkpoint_is_the_source_of_its_space(context, tmp_path):
    """Search and proxy read the stored space; a member outside it is refused by gene name."""
    checkpoint, space = _checkpoint_with_space(tmp_path / "supernet.pt")
    proxy = get_proxy("supernet", checkpoint=checkpoint, recalibration_batches=1, batch_size=2)
    assert proxy.space == space
    assert (
        search_space(SearchConfig(), proxy, IDENTITY) == space
    )  # not the default multibranch space
    genes = space.encode(space.smallest())
    genes["stage2.width"] = 48  # a 0.75 multiplier: in the default space, not in this one
    stranger = LitePoseSpace(space.largest, resolutions=(SIZE,)).decode(genes)
    assert stranger.stages[1].channels <= space.largest.stages[1].channels  # it could be sliced
    with pytest.raises(ArchConfigError, match=r"stage2\.width=48: must be one of \(32, 64\)"):
        proxy.subnet(stranger, context)


def test_checkpoints_without_a_stored_space_keep_the_old_behaviour(tmp_path):
    torch.manual_seed(0)
    net = LitePoseSupernet(get_preset("litepose_supernet", input_size=SIZE))
    old = save_checkpoint({"model": net.state_dict(), **supernet_state(net)}, tmp_path / "old.pt")
    proxy = get_proxy("supernet", checkpoint=str(old))
    assert proxy.space is None
    assert search_space(SearchConfig(), proxy, IDENTITY) == LitePoseSpace(
        largest_member_of(SearchConfig.supernet)
    )


def test_the_search_maps_its_resolution_genes_onto_the_trained_sizes(context, tmp_path):
    """Trained at 96 / 128 px, scored under the default rule (256 -> 96, 384 -> 128): the search
    keeps those genes, and a gene scored at an untrained size is refused, saying so."""
    checkpoint, space = _checkpoint_with_space(tmp_path / "supernet.pt", resolutions=(96, 128))
    proxy = get_proxy("supernet", checkpoint=checkpoint, recalibration_batches=1)
    rule = ResolutionRule()
    searched = search_space(SearchConfig(), proxy, rule)
    assert searched.resolutions == (256, 384)
    assert searched.width_multipliers == space.width_multipliers
    at_320 = dataclasses.replace(searched.smallest(), input_size=320)  # scored at 112 px
    scored_by_rule = dataclasses.replace(context, resolution_rule=rule)
    with pytest.raises(ArchConfigError, match=r"resolution=320: is scored at 112 px.*\(96, 128\)"):
        proxy.subnet(at_320, scored_by_rule)
    with pytest.raises(ValueError, match="resolution_rule"):
        search_space(SearchConfig(), proxy, ResolutionRule(scale=2.0))
