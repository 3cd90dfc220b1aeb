"""The describe entry point (Hydra): table and JSON lines."""

import json
import subprocess

import commands


def _run(*overrides: str) -> subprocess.CompletedProcess:
    return commands.run("describe", *overrides, timeout=300)


def test_json_lines_have_the_contract_keys():
    result = _run("format=json", "presets='litepose_[xm]*'")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["name"] for r in records] == ["litepose_xs", "litepose_m"]
    for record in records:
        assert set(record) == {
            "name",
            "input_size",
            "macs",
            "macs_paper",
            "params",
            "published_macs",
        }
        assert isinstance(record["macs"], int) and record["macs_paper"] > record["macs"]
    assert records[0]["input_size"] == 256 and records[0]["published_macs"] == 1_200_000_000
    assert abs(records[0]["macs"] / 0.92e9 - 1) < 5e-3


def test_table_lists_presets_and_typos_fail():
    result = _run("presets=shrink*")
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in ("shrink1", "shrink2", "shrink3"))
    assert "GMACs (paper conv.)" in result.stdout
    typo = _run("formt=json")
    assert typo.returncode != 0 and "formt" in typo.stderr
    unknown = _run("presets=nothing_like_this")
    assert unknown.returncode != 0 and "litepose_xs" in unknown.stderr
