"""The GFLOPs the HRNet repository's own counter gives its SimpleBaseline networks, for
``tests/test_topdown_arch.py`` (the published 8.9 / 12.4 / 15.7 are that counter's numbers
cut to one decimal; posearch's HRNet-convention count is checked against the counter itself).

Run it with a checkout of github.com/leoxiaobin/deep-high-resolution-net.pytorch (not part of
this repository) in a Python with torch and yacs:

    python scripts/make_hrnet_gflops_fixture.py --hrnet /path/to/deep-high-resolution-net.pytorch \\
        --out tests/data/hrnet_reference/simplebaseline_gflops.json \\
        --commit "$(git -C /path/to/deep-high-resolution-net.pytorch rev-parse HEAD)"

It does not import posearch: it builds ``lib/models/pose_resnet.py`` from the repository's own
``experiments/coco/resnet/res<depth>_256x192_d256x3_adam_lr1e-3.yaml`` and reads the total of
``lib/utils/utils.py``'s ``get_model_summary`` (conv and linear weights per output pixel, in
units of 2**30) on a 1x3x256x192 input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

DEPTHS = (50, 101, 152)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hrnet", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--commit", default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(args.hrnet / "lib"))
    import torch
    from config import cfg
    from models.pose_resnet import get_pose_net
    from utils.utils import get_model_summary

    rows = {}
    for depth in DEPTHS:
        name = f"res{depth}_256x192_d256x3_adam_lr1e-3.yaml"
        config = cfg.clone()
        config.defrost()
        config.merge_from_file(str(args.hrnet / "experiments" / "coco" / "resnet" / name))
        config.freeze()
        model = get_pose_net(config, is_train=False).eval()
        summary = get_model_summary(model, torch.zeros(1, 3, 256, 192), verbose=False)
        total = re.search(r"Multiply Adds.*?: ([0-9.]+) GFLOPs", summary).group(1)
        rows[f"simplebaseline_resnet{depth}"] = {"config": name, "gflops": float(total)}
        print(depth, total)
    record = {"repository": "leoxiaobin/deep-high-resolution-net.pytorch", "commit": args.commit,
              "counter": "lib/utils/utils.py get_model_summary", "input": [1, 3, 256, 192],
              "models": rows}  # fmt: skip
    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
