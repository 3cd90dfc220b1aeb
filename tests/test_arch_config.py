"""The architecture language: validation errors, round trips, canonical hashing, release format."""

import dataclasses
import json

import numpy as np
import pytest
from branchy import BLOCK, branchy, with_branches
from branchy import SIZE as BRANCHY_SIZE

from search_space import (
    ArchConfigError,
    DeconvHeadConfig,
    InvertedResidualConfig,
    LiteBranchConfig,
    arch_hash,
    from_dict,
    from_json,
    from_litepose_release,
    from_yaml,
    get_preset,
    list_presets,
    load_arch,
    save_arch,
    to_dict,
    to_json,
    to_litepose_release,
    to_yaml,
)
from search_space.random_arch import random_config


def _with_kernel(config, stage: int, block: int, kernel: int):
    data = to_dict(config)
    data["stages"][stage]["blocks"][block]["kernel"] = kernel
    return data


def test_bad_kernel_names_field_and_allowed_values():
    data = _with_kernel(get_preset("litepose_s"), stage=2, block=4, kernel=4)
    with pytest.raises(ArchConfigError) as err:
        from_dict(data)
    assert str(err.value) == "stages[2].blocks[4].kernel=4: must be an odd size in {3, 5, 7, 9}"


@pytest.mark.parametrize(
    "mutate, path, fragment",
    [
        (lambda d: d.update(input_size=500), "input_size", "multiple of 16"),
        (lambda d: d.update(input_size=0), "input_size", ">= 16"),
        (lambda d: d.update(num_joints=15), "num_joints", "{14, 17}"),
        (lambda d: d.update(tag_dim=0), "tag_dim", ">= 1"),
        (lambda d: d.update(stem_channels=2.5), "stem_channels", "integer"),
        (lambda d: d.update(stem_channels=True), "stem_channels", "integer"),
        (lambda d: d["stages"].pop(), "stages", "exactly 4"),
        (lambda d: d["stages"][1].update(stride=3), "stages[1].stride", "{1, 2}"),
        (lambda d: d["stages"][3].update(stride=2), "stages[3].stride", "fusion head"),
        (lambda d: d["stages"][0].update(channels=-8), "stages[0].channels", ">= 1"),
        (lambda d: d["stages"][0].update(blocks=[]), "stages[0].blocks", "not be empty"),
        (
            lambda d: d["stages"][0]["blocks"][1].update(expansion=0),
            "stages[0].blocks[1].expansion",
            ">= 1",
        ),
        (lambda d: d["head"].update(kind="fancy"), "head.kind", "{fusion, plain}"),
        (lambda d: d["head"].update(channels=[8, 8]), "head.channels", "exactly 3"),
        (lambda d: d["head"].update(final_kernel=2), "head.final_kernel", "odd size"),
        (lambda d: d.update(stem_chanels=16), "stem_chanels", "unknown field"),
        (lambda d: d["stages"][0].pop("stride"), "stages[0].stride", "is required"),
        (lambda d: d.update(family="resnet"), "family", "higherhrnet"),
        # Sane bounds: each of these used to be accepted (and 4096 px ran out of memory).
        (lambda d: d.update(input_size=4096), "input_size", ">= 16 and <= 1024"),
        (
            lambda d: d["stages"][2]["blocks"][0].update(expansion=1000000),
            "stages[2].blocks[0].expansion",
            ">= 1 and <= 8",
        ),
        (lambda d: d["stages"][3].update(channels=4096), "stages[3].channels", "<= 1024"),
        (lambda d: d.update(stem_channels=2048), "stem_channels", "<= 1024"),
        (lambda d: d["head"].update(channels=[32, 24, 5000]), "head.channels[2]", "<= 1024"),
        (
            lambda d: d["stages"][1].update(blocks=d["stages"][1]["blocks"] * 5),
            "stages[1].blocks",
            "at most 32 blocks",
        ),
        (lambda d: d.update(tag_dim=100), "tag_dim", ">= 1 and <= 8"),
    ],
)
def test_malformed_litepose_configs_name_the_field(mutate, path, fragment):
    data = to_dict(get_preset("litepose_xs"))
    mutate(data)
    with pytest.raises(ArchConfigError) as err:
        from_dict(data)
    assert str(err.value).startswith(f"{path}="), str(err.value)
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "mutate, path, fragment",
    [
        (lambda d: d.update(input_size=80), "input_size", "multiple of 32"),
        (
            lambda d: d["stages"][1]["blocks"][0].__setitem__(2, -1),
            "stages[1].blocks[0][2]",
            ">= 0",
        ),
        (lambda d: d["stages"][1]["blocks"][0].pop(), "stages[1].blocks[0]", "exactly 3"),
        (lambda d: d["stages"][2].update(widths=[16, 32, 64]), "stages[2].widths", "exactly 4"),
        (
            lambda d: d["stages"][2].update(widths=[16, 32, 65, 128]),
            "stages[2].widths",
            "previous stage's branch widths",
        ),
        (lambda d: d["stages"][0].update(block="dense"), "stages[0].block", "{basic, bottleneck}"),
        (lambda d: d["head"].update(deconv_kernel=5), "head.deconv_kernel", "{2, 3, 4}"),
        (lambda d: d["head"].update(final_conv_kernel=5), "head.final_conv_kernel", "{1, 3}"),
        (lambda d: d["head"].update(cat_output="yes"), "head.cat_output", "true or false"),
        (lambda d: d.update(stem_planes=0), "stem_planes", ">= 1"),
        (lambda d: d.update(input_size=4096), "input_size", ">= 32 and <= 1024"),
        (lambda d: d.update(stem_planes=4096), "stem_planes", "<= 1024"),
        (lambda d: d.update(stem_blocks=100), "stem_blocks", "<= 32"),
        (
            lambda d: d["stages"][2].update(widths=[16, 32, 64, 2048]),
            "stages[2].widths[3]",
            "<= 1024",
        ),
        (
            lambda d: d["stages"][0]["blocks"][0].__setitem__(1, 99),
            "stages[0].blocks[0][1]",
            "<= 32",
        ),
        (
            lambda d: d["stages"][1].update(blocks=d["stages"][1]["blocks"] * 3),
            "stages[1].blocks",
            "at most 8 modules",
        ),
        (lambda d: d["head"].update(deconv_channels=9999), "head.deconv_channels", "<= 1024"),
        (lambda d: d["head"].update(num_basic_blocks=64), "head.num_basic_blocks", "<= 32"),
    ],
)
def test_malformed_higherhrnet_configs_name_the_field(mutate, path, fragment):
    data = to_dict(get_preset("higherhrnet_w16"))
    mutate(data)
    with pytest.raises(ArchConfigError) as err:
        from_dict(data)
    assert str(err.value).startswith(f"{path}="), str(err.value)
    assert fragment in str(err.value)


def test_invalid_config_cannot_be_constructed_directly():
    config = get_preset("litepose_xs")
    with pytest.raises(ArchConfigError, match="input_size"):
        dataclasses.replace(config, input_size=250)
    with pytest.raises(ArchConfigError, match="head.kind"):
        dataclasses.replace(config, head=DeconvHeadConfig(kind="big"))


def test_malformed_json_and_yaml_text():
    with pytest.raises(ArchConfigError, match="not valid JSON"):
        from_json("{family: litepose")
    with pytest.raises(ArchConfigError, match="not valid YAML"):
        from_yaml("family: [litepose")
    with pytest.raises(ArchConfigError, match="mapping"):
        from_json("[1, 2]")


@pytest.mark.parametrize("name", list_presets())
def test_presets_round_trip_through_json_and_yaml(name):
    config = get_preset(name)
    assert from_json(to_json(config)) == config
    assert from_yaml(to_yaml(config)) == config
    assert arch_hash(from_yaml(to_yaml(config))) == arch_hash(config)


def test_random_configs_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        config = random_config(rng)
        assert from_json(to_json(config)) == config


def test_hash_is_canonical_and_discriminating():
    a = get_preset("litepose_s")
    # Same architecture built another way (a different block object, same values): same hash.
    rebuilt = from_dict(json.loads(json.dumps(to_dict(a))))
    assert rebuilt is not a and arch_hash(rebuilt) == arch_hash(a)
    hashes = {arch_hash(get_preset(n)) for n in list_presets()}
    assert len(hashes) == len(list_presets())
    changed = dataclasses.replace(a, input_size=a.input_size + 16)
    assert arch_hash(changed) != arch_hash(a)


def test_litepose_release_format_round_trip_and_values():
    release = {
        "img_size": 256,
        "input_channel": 16,
        "deconv_setting": [16, 24, 24],
        "backbone_setting": [
            {"num_blocks": n, "stride": s, "channel": c, "block_setting": [[6, 7]] * n}
            for n, s, c in ((6, 2, 16), (8, 2, 32), (10, 2, 48), (10, 1, 80))
        ],
    }
    config = from_litepose_release(release)
    assert config == get_preset("litepose_xs")
    assert to_litepose_release(config) == release
    broken = json.loads(json.dumps(release))
    broken["backbone_setting"][1]["block_setting"].pop()
    with pytest.raises(ArchConfigError, match=r"backbone_setting\[1\].block_setting"):
        from_litepose_release(broken)
    with pytest.raises(ArchConfigError, match="img_size"):
        from_litepose_release({k: v for k, v in release.items() if k != "img_size"})


def test_save_and_load_arch_files(tmp_path):
    config = get_preset("shrink2")
    path = save_arch(config, tmp_path / "arch.json")
    data = json.loads(path.read_text())
    assert data["hash"] == arch_hash(config)
    assert load_arch(path) == config
    (tmp_path / "arch.yaml").write_text(to_yaml(config))
    assert load_arch(tmp_path / "arch.yaml") == config
    release = tmp_path / "xs.json"
    release.write_text(json.dumps(to_litepose_release(get_preset("litepose_xs"))))
    assert load_arch(release) == get_preset("litepose_xs")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_arch(tmp_path / "missing.json")


def test_unknown_preset_lists_known_ones():
    with pytest.raises(KeyError, match="litepose_xs"):
        get_preset("litepose_xxl")


def test_block_config_defaults_are_the_released_ones():
    assert InvertedResidualConfig() == InvertedResidualConfig(kernel=7, expansion=6)


# ------------------------------------------------------------------ branches
def test_older_architectures_keep_their_hash():
    # The hash of LitePose-XS before branches were added to the language.
    assert arch_hash(get_preset("litepose_xs")) == "13e948e6080ab962"
    old_file = to_dict(get_preset("litepose_xs"))
    assert from_dict(old_file) == get_preset("litepose_xs")


def test_branchy_configs_round_trip_and_hash_apart():
    config = branchy()
    assert from_json(to_json(config)) == config
    assert from_yaml(to_yaml(config)) == config
    assert to_dict(config)["stages"][2]["branches"][1] == {
        "feature_stride": 8,
        "blocks": [{"kernel": 5, "expansion": 4}],
    }
    assert arch_hash(config) != arch_hash(get_preset("litepose_xs", input_size=BRANCHY_SIZE))
    assert config.parallel_paths(2) == ((4, 16), (8, 32), (16, 48))
    assert config.parallel_paths(3) == ()


def _stage(data: dict, s: int) -> dict:
    return data["stages"][s]


@pytest.mark.parametrize(
    "mutate, path, fragment",
    [
        (
            lambda d: _stage(d, 0).update(branches=[{"feature_stride": 4, "blocks": [{}]}]),
            "stages[0].branches",
            "finest resolution",
        ),
        (
            lambda d: _stage(d, 2)["branches"][0].update(feature_stride=16),
            "stages[2].branches[0].feature_stride",
            "{4, 8}",
        ),
        (
            lambda d: _stage(d, 1)["branches"][0].update(feature_stride=8),
            "stages[1].branches[0].feature_stride",
            "{4}",
        ),
        (
            lambda d: _stage(d, 1)["branches"][0].update(blocks=[]),
            "stages[1].branches[0].blocks",
            "a dropped branch is left out",
        ),
        (
            lambda d: _stage(d, 2)["branches"].reverse(),
            "stages[2].branches[1].feature_stride",
            "highest resolution first",
        ),
        (
            lambda d: _stage(d, 2)["branches"][1].update(feature_stride=4),
            "stages[2].branches[1].feature_stride",
            "each resolution once",
        ),
        (
            lambda d: _stage(d, 2)["branches"][0]["blocks"][0].update(kernel=4),
            "stages[2].branches[0].blocks[0].kernel",
            "odd size",
        ),
        (
            lambda d: _stage(d, 2)["branches"][1]["blocks"][0].update(expansion=0),
            "stages[2].branches[1].blocks[0].expansion",
            ">= 1",
        ),
        (
            lambda d: _stage(d, 1)["branches"][0].update(depth=2),
            "stages[1].branches[0].depth",
            "unknown field",
        ),
        (
            lambda d: _stage(d, 1)["branches"][0].pop("feature_stride"),
            "stages[1].branches[0].feature_stride",
            "is required",
        ),
        (
            lambda d: _stage(d, 1).update(branches={"feature_stride": 4}),
            "stages[1].branches",
            "must be a list",
        ),
        (
            lambda d: d["head"].update(kind="plain"),
            "stages[1].branches",
            "fusion head",
        ),
    ],
)
def test_invalid_branches_name_the_field(mutate, path, fragment):
    data = to_dict(branchy())
    mutate(data)
    with pytest.raises(ArchConfigError) as err:
        from_dict(data)
    assert str(err.value).startswith(f"{path}="), str(err.value)
    assert fragment in str(err.value)


def test_branches_must_be_branch_configs_and_have_no_release_format():
    xs = get_preset("litepose_xs")
    with pytest.raises(ArchConfigError, match=r"^stages\[1\].branches\[0\]="):
        with_branches(xs, {1: ((BLOCK,),)})
    with pytest.raises(ArchConfigError, match=r"^stages\[1\].branches="):
        with_branches(xs, {1: [LiteBranchConfig(4, (BLOCK,))]})
    with pytest.raises(ArchConfigError, match=r"^stages\[1\].branches="):
        to_litepose_release(branchy())
