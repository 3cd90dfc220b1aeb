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


def test_every_random_member_validates_and_round_trips(space):
    """Each sampled member is a valid config (it builds its plan), survives JSON and the
    search's gene encoding, and the space contains it; foreign families are not members."""
    from search_space import arch_hash, from_json, to_json
    from search_space.plan import layer_plan

    rng = np.random.default_rng(1)
    for _ in range(25):
        member = space.sample(rng)
        assert layer_plan(member)  # validates and plans
        assert from_json(to_json(member)) == member
        assert arch_hash(from_json(to_json(member))) == arch_hash(member)
        genes = space.encode(member)
        assert set(genes) == set(space.choices())  # every gene, as the driver suggests them
        assert space.decode(genes) == member and space.contains(member)
    assert not space.contains(get_preset("litepose_xs"))
    assert not space.contains(get_preset("simplebaseline_resnet50"))


def test_choices_are_plain_values_ascending_in_cost(space):
    """Optuna's categorical choices must be plain values, and the budgeted sampler's repair
    lowers a gene one choice at a time: each gene's choices cost more left to right."""
    from evaluators.macs_fast import fast_macs

    choices = space.choices()
    assert choices["crop"] == ("96x64", "128x96", "160x128")  # by area, not as declared
    base = space.encode(space.largest)
    for name, values in choices.items():
        assert all(isinstance(v, int | str) for v in values), name
        costs = [fast_macs(space.decode({**base, name: v})).macs for v in values]
        assert costs == sorted(costs), name
    smallest = fast_macs(space.smallest()).macs
    assert all(fast_macs(space.sample(np.random.default_rng(i))).macs >= smallest
               for i in range(10))  # fmt: skip


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
    without = {k: v for k, v in genes.items() if k != "deconv2.kernel"}
    with pytest.raises(SpaceError, match=r"^deconv2.kernel=None: gene missing"):
        space.decode(without)


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
    decoder = table["decoder GMACs"]
    assert decoder.is_monotonic_increasing
    # only the decoder changes: the encoder's MACs are the same in every row
    assert np.allclose(table["GMACs (true)"] - decoder, (table["GMACs (true)"] - decoder)[0])


def test_the_topdown_ablation_trains_every_width_and_seed_and_resumes(tmp_path, monkeypatch):
    """train=true on a top-down preset: each width once per seed through the family trainer,
    mean and sd of the seeds' AP in the table; a rerun trains nothing."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    import experiments.data
    import experiments.family_training
    from experiments.deconv_ablation import run

    trained = []

    def fake_train(config, train_set, schedule, seed, losses):
        trained.append((tuple(d.channels for d in config.head.deconvs), seed, config.input_size))
        assert losses.foreground_weight == 20.0  # loss=demo reaches the top-down loss
        return (config, seed)

    def fake_ap(model, config, dataset, max_images):
        return {"AP": 0.1 * (1 + model[1]), "AP50": 0.5}

    monkeypatch.setattr(experiments.family_training, "train_short", fake_train)
    monkeypatch.setattr(experiments.family_training, "validation_ap", fake_ap)
    monkeypatch.setattr(experiments.data, "load_datasets", lambda dataset: (None, None))
    conf = Path(__file__).resolve().parents[1] / "experiments" / "conf"
    overrides = ["preset=rethinking_mobile_demo", "num_joints=14", "train=true", "latency=false",
                 "widths=[[8,8,8],[64,32,32]]", "seeds=[0,1,2]", "schedule.steps=3",
                 f"run_dir={tmp_path}"]  # fmt: skip
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("deconv_ablation", overrides=overrides)
    table = run(cfg)
    assert len(trained) == 6 and {t[2] for t in trained} == {(128, 96)}
    assert list(table["seeds"]) == [3, 3]
    assert np.allclose(table["AP"], 0.2) and np.allclose(table["AP sd"], 0.1)
    assert list(table["train size"]) == ["128x96", "128x96"]
    assert (tmp_path / "deconv_ablation.png").exists()
    run(cfg)
    assert len(trained) == 6  # every (width, seed) reused from trained.jsonl
