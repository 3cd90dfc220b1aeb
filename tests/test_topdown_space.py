"""The declared top-down search space: members are valid configs, genes round-trip, and a gene
or value from outside the space names itself."""

import dataclasses

import numpy as np
import pytest

from search_space import get_preset
from search_space.topdown_space import SpaceError, TopDownSpace


@pytest.fixture(scope="module")
def space():
    return TopDownSpace()


def test_the_largest_member_is_in_the_space_and_samples_round_trip(space):
    assert space.decode(space.genes(space.largest)) == space.largest
    rng = np.random.default_rng(0)
    members = [space.sample(rng) for _ in range(40)]
    for member in members:
        assert space.decode(space.genes(member)) == member
    assert {m.input_size for m in members} == {(128, 96), (96, 64), (160, 128)}
    widths = {d.channels for m in members for d in m.head.deconvs}
    assert widths == set(space.deconv_widths)  # every deconv width is reachable
    assert (
        len({m.encoder.stages[0].depth for m in members}) == space.largest.encoder.stages[0].depth
    )


def test_a_foreign_gene_names_itself(space):
    genes = space.genes(space.largest)
    with pytest.raises(SpaceError, match=r"^tag_dim=1: is not a gene"):
        space.decode({**genes, "tag_dim": 1})
    with pytest.raises(SpaceError, match=r"^deconv1.width=24: must be one of"):
        space.decode({**genes, "deconv1.width": 24})


def test_a_config_outside_the_space_names_the_field(space):
    with pytest.raises(SpaceError, match=r"^encoder.kind='resnet'"):
        space.genes(get_preset("simplebaseline_resnet50"))
    with pytest.raises(SpaceError, match=r"^family='litepose'"):
        space.genes(get_preset("litepose_xs"))
    fewer = dataclasses.replace(
        space.largest,
        head=dataclasses.replace(space.largest.head, deconvs=space.largest.head.deconvs[:2]),
    )
    with pytest.raises(SpaceError, match=r"^head.deconvs=2: is fixed at 3"):
        space.genes(fewer)


def test_a_crop_the_encoder_cannot_take_is_refused_when_declared():
    with pytest.raises(Exception, match=r"input_size\[1\]=100"):
        TopDownSpace(crops=((128, 100),))


def test_the_deconv_ablation_sweeps_a_topdown_decoder(tmp_path):
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from experiments.deconv_ablation import run

    conf = Path(__file__).resolve().parents[1] / "experiments" / "conf"

    def cfg(*overrides):
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            return compose("deconv_ablation", overrides=list(overrides))

    table = run(cfg("preset=rethinking_mobile_demo", "scales=[0.25,1.0,4.0]", "latency=true",
                    "latency_runs=2", "latency_warmup=1", f"run_dir={tmp_path}"))  # fmt: skip
    assert list(table["head channels"]) == ["16-8-8", "64-32-32", "256-128-128"]
    assert list(table["preset"]) == [False, True, False]
    macs = list(table["GMACs (true)"])
    assert macs == sorted(macs) and "CPU ms @128x96" in table.columns
    with pytest.raises(Exception, match="train=true trains bottom-up heads"):
        run(cfg("preset=rethinking_mobile_demo", "train=true", f"run_dir={tmp_path}"))
