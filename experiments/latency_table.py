"""Measure the per-layer latency table of the search space on this device.

    python -m experiments.latency_table runtime=onnxruntime threads=1 out=latency_ort_1t.csv
    python -m experiments.latency_table runtime=torch threads=4 out=latency_torch_4t.csv
    python -m experiments.latency_table runtime=openvino threads=1 out=latency_ov_1t.csv  # [edge]
    python -m experiments.latency_table ... supernet=litepose_supernet   # another space
    python -m experiments.latency_table ... threads=1 clock=cpu   # a machine shared with other jobs

Times every distinct layer the space around ``supernet`` can produce (all its resolutions),
once, as ``evaluators.latency_table`` describes; then fits the predictor (an affine function of
the sum of a network's entries) on whole networks (the LitePose presets in the space and
``calibration`` random members). Writes ``out`` row by row: rerunning the same command resumes
it; a table that is complete is left as it is, except that one fitted the old way (a constant
alone) is refitted from the calibration networks it records, nothing measured again. The
runtimes are ``onnxruntime`` and ``torch``, and ``openvino`` / ``executorch`` where the
``[edge]`` extra is installed. Copy the file from the target device (a Raspberry Pi, a Jetson)
and give it to ``python -m experiments.search convention=latency budget=40ms table=<file>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from evaluators.latency_table import build_table
from experiments.cli import fail_clearly
from posecore.interrupts import Interrupted, requested, stop_on_signals
from search_space.space import LitePoseSpace, largest_member_of


@dataclass
class LatencyTableConfig:
    runtime: str = "onnxruntime"  # onnxruntime | openvino | executorch | torch
    threads: int = 1
    out: str = MISSING
    supernet: str = "litepose_supernet_multibranch"  # the space's largest member, as in search
    calibration: int = 8  # random members (besides the presets) the fit is made on
    network_runs: int = 10  # timed runs per calibration network (median)
    clock: str = "wall"  # or cpu: the thread's CPU time (threads=1), for a machine shared by jobs
    progress: bool = True


ConfigStore.instance().store(name="latency_table_schema", node=LatencyTableConfig)


def latency_table(cfg: LatencyTableConfig):
    space = LitePoseSpace(largest_member_of(cfg.supernet))
    table = build_table(
        space, cfg.runtime, cfg.threads, cfg.out, cfg.calibration, cfg.network_runs, cfg.progress,
        cfg.clock,
    )  # fmt: skip
    if requested():
        raise Interrupted(
            requested(),
            f"{len(table.entries)} layers are in {cfg.out}; rerun the same command to measure "
            "the rest",
        )
    h = table.header
    print(
        f"{cfg.out}: {len(table.entries)} layers, {h.runtime} {h.runtime_version}, "
        f"{h.threads} thread(s), {h.clock} clock, {h.cpu}; predicted = {h.scale:.4f} x sum of "
        f"entries + {h.constant_us:.0f} us ({h.fit} fit on {len(h.calibration)} networks)"
    )
    return table


@hydra.main(version_base="1.3", config_path="conf", config_name="latency_table")
def main(cfg: LatencyTableConfig) -> None:
    with fail_clearly("latency_table"), stop_on_signals():
        latency_table(cfg)


if __name__ == "__main__":
    main()
