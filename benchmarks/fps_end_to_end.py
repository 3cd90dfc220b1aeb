"""Frames per second end to end: the network (each runtime and precision) plus decoding at 1, 5
and 20 persons per image, LitePose-XS and -S, one thread; beside posearch's decoder, the LitePose
release's ``HeatmapParser`` on the same maps.

    git -C <mirror of mit-han-lab/litepose> archive HEAD lib | tar -x -C /tmp/litepose_src
    .venv/bin/python benchmarks/fps_end_to_end.py --litepose /tmp/litepose_src/lib \\
        [--models xs s] [--runtimes onnx openvino executorch] [--precisions fp32 int8] \\
        [--persons 1 5 20] [--images 8] [--runs 10]

A frame is what a deployed model does per image, without flip test (one forward):

* **network**: the runtime file (``posenets.runtimes``, as ``experiments.export runtime=...``
  writes it; fresh weights, int8 calibrated on noise images: the time does not depend on the
  values) on one image at the preset's input size, median of ``--runs`` calls, thread CPU time;
* **maps**: ``HeatmapTagCodec.maps`` on the network's outputs (upsampling and averaging the two
  resolutions into the 1/2-resolution heatmaps and tags), median thread CPU time;
* **decode**: NMS, top-k, tag grouping, refinement and scores of the persons, on
  ``benchmarks/decode_bench.py``'s synthetic maps of that size with exactly 1, 5 or 20 persons
  (a network with fresh weights has none to find), mean over ``--images`` images, by
  posearch's ``HeatmapTagCodec.decode_maps`` and by the release's ``HeatmapParser.parse``
  (adjust and refine on, its CrowdPose test settings: NMS 5x5, detection threshold 0.1, 30
  persons, run from ``--litepose``, outside this repository, never copied in).

frames/s = 1000 / (network + maps + decode ms). The decode's inputs and the thread-CPU clock are
the same for both decoders; the release's own map aggregation is not timed (posearch's is, once,
for both).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode_bench import scene  # noqa: E402

from bottomup.codec import CodecConfig, HeatmapTagCodec  # noqa: E402
from bottomup.keypoints import CROWDPOSE  # noqa: E402
from evaluators.latency import measure_runtime_latency  # noqa: E402
from posenets import build_model  # noqa: E402
from posenets.io import export_onnx  # noqa: E402
from posenets.runtimes import (  # noqa: E402
    RUNTIMES,
    available,
    export_runtime,
    open_runner,
    runtime_file,
)
from search_space import get_preset  # noqa: E402

STRIDE = 2  # the decoded maps are at 1/2 of the input


def release_parser(lib: Path):
    """The release's HeatmapParser under its CrowdPose test settings (experiments/crowd_pose/
    mobilenet/mobile.yaml and lib/config/default.py), imported from the release's own folder."""
    sys.path.insert(0, str(lib))
    from core.group import HeatmapParser  # the release's module, not posearch's

    cfg = SimpleNamespace(
        DATASET=SimpleNamespace(NUM_JOINTS=14, MAX_NUM_PEOPLE=30, WITH_CENTER=False),
        MODEL=SimpleNamespace(TAG_PER_JOINT=True),
        TEST=SimpleNamespace(
            DETECTION_THRESHOLD=0.1, TAG_THRESHOLD=1.0, USE_DETECTION_VAL=True,
            IGNORE_TOO_MUCH=False, IGNORE_CENTER=True, NMS_KERNEL=5, NMS_PADDING=2,
        ),
    )  # fmt: skip
    return HeatmapParser(cfg)


def thread_ms(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        call()
        times.append((time.thread_time() - start) * 1e3)
    return statistics.median(times)


def decode_ms(args, codec, parser, size: int) -> dict[tuple[str, int], float]:
    rng = np.random.default_rng(0)
    out = {}
    for persons in args.persons:
        images = [scene(rng, codec, size, 1, persons) for _ in range(args.images)]
        codec.decode_maps([(h, t, 1.0) for h, t in images[:1]])  # warm-up
        start = time.thread_time()
        for heat, tags in images:
            codec.decode_maps([(heat, tags, 1.0)])
        out[("posearch", persons)] = (time.thread_time() - start) * 1e3 / len(images)
        if parser is not None:
            pairs = [(h[None], t.permute(0, 2, 3, 1)[None].contiguous()) for h, t in images]
            parser.parse(*pairs[0], True, True)
            start = time.thread_time()
            for det, tag in pairs:
                parser.parse(det, tag, True, True)
            out[("litepose", persons)] = (time.thread_time() - start) * 1e3 / len(images)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["xs", "s"])
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--persons", nargs="+", type=int, default=[1, 5, 20])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--litepose", type=Path, default=None, help="the release's lib/ folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runtimes = [r for r in args.runtimes if available(r)]
    reference = release_parser(args.litepose) if args.litepose else None
    rows = []
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    for name in args.models:
        config = get_preset(f"litepose_{name}")
        size = config.input_size
        codec = HeatmapTagCodec(CodecConfig(size, CROWDPOSE.num_joints, config.tag_dim), CROWDPOSE)
        decoded = decode_ms(args, codec, reference, size // STRIDE)
        torch.manual_seed(0)
        model = build_model(config).eval()
        rng = np.random.default_rng(0)
        noise = [rng.standard_normal((3, size, size)).astype(np.float32) for _ in range(8)]
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            export_onnx(model, config, folder / "model.onnx")
            image = noise[0][None]
            maps = None
            for runtime in runtimes:
                for precision in args.precisions:
                    if precision not in RUNTIMES[runtime].precisions:
                        continue
                    export_runtime(folder, model, config, runtime, precision, noise)
                    path = runtime_file(folder, runtime, precision)
                    network = measure_runtime_latency(
                        path, runtime, size, macs=0, runs=args.runs, threads=1, clock="cpu"
                    ).latency_ms
                    if maps is None:
                        outputs = [torch.from_numpy(o) for o in open_runner(path, runtime)(image)]
                        maps = thread_ms(lambda o=outputs, c=codec: c.maps(o, None), args.runs)
                    for (decoder, persons), ms in decoded.items():
                        total = network + maps + ms
                        rows.append({
                            "model": name.upper(), "runtime": runtime, "precision": precision,
                            "decoder": decoder, "persons": persons, "network_ms": network,
                            "maps_ms": maps, "decode_ms": ms, "fps": 1e3 / total,
                        })  # fmt: skip
        shown = pd.DataFrame([r for r in rows if r["model"] == name.upper()])
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        print(f"{name}: done, load average {os.getloadavg()[0]:.1f}", flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print("\nframes per second (one thread):")
    wide = table.pivot_table(
        index=["model", "runtime", "precision"], columns=["decoder", "persons"], values="fps"
    )
    print(wide.to_string(float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
