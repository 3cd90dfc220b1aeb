"""Every case of docs/reliability.md through the command a user would type: one line, exit 2.

Each case writes its bad input into a temporary folder and returns the command's overrides; the
test runs the entry point as a user would and checks the exit status, that the error is one line
(no traceback) naming what is wrong, and that no file given to the command ran code.
"""

import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import commands
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
COCO_GT = DATA / "coco_kpt_mini" / "annotations" / "person_keypoints_mini.json"
COCO_DETS = DATA / "coco_kpt_mini" / "golden" / "dets_noisy.json"
CROWDPOSE_GT = DATA / "crowdpose_mini" / "json" / "crowdpose_mini.json"
CROWDPOSE_DETS = DATA / "crowdpose_mini" / "golden" / "dets_noisy.json"


@dataclass(frozen=True)
class Case:
    """A bad input, the entry point it is given to, and what the one-line error must say."""

    name: str
    command: str
    make: Callable[[Path], list[str]]  # writes the input under the folder, returns overrides
    expect: str  # a regular expression the error line must match
    absent: str = ""  # a path under the folder the command must not have made (its data)


def _text(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _write(folder: Path, name: str, data: object) -> Path:
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def _dets(change: Callable[[list[dict]], object]) -> Callable[[Path], list[str]]:
    """Score the COCO fixture's detections after ``change`` against its ground truth."""

    def make(folder: Path) -> list[str]:
        dets = json.loads(COCO_DETS.read_text())
        change(dets)
        return [f"results={_write(folder, 'dets.json', dets)}", f"gt={COCO_GT}", "dataset=coco"]

    return make


def _gt(
    change: Callable[[dict], object], gt: Path = COCO_GT, dets: Path = COCO_DETS
) -> Callable[[Path], list[str]]:
    """Score a fixture's detections against its ground truth (COCO unless ``gt`` says) after
    ``change`` edits the ground truth in place."""
    dataset = "crowdpose" if gt == CROWDPOSE_GT else "coco"

    def make(folder: Path) -> list[str]:
        data = json.loads(gt.read_text())
        change(data)
        return [f"results={dets}", f"gt={_write(folder, 'gt.json', data)}", f"dataset={dataset}"]

    return make


def _fixed(*overrides: str) -> Callable[[Path], list[str]]:
    return lambda folder: list(overrides)


HUGE_INTEGER_JSON = '{"images": ' + "9" * 5000 + "}"

SCORING = [
    Case(
        "detection category_id 0 (0-based)",
        "score",
        _dets(lambda d: d[0].__setitem__("category_id", 0)),
        r"detection 0: category_id 0 is not a ground-truth category \[1\]",
    ),
    Case(
        "detection category_id 2",
        "score",
        _dets(lambda d: [det.__setitem__("category_id", 2) for det in d]),
        r"detection 0: category_id 2 is not a ground-truth category",
    ),
    Case(
        "detection coordinate 1e308",
        "score",
        _dets(lambda d: d[1]["keypoints"].__setitem__(3, 1e308)),
        r"detection 1: keypoints\[3\]=1e\+308: a coordinate must lie within \+-1e\+06 px",
    ),
    Case(
        "detection coordinate true",
        "score",
        _dets(lambda d: d[2]["keypoints"].__setitem__(0, True)),
        r"detection 2: keypoints\[0\]=True: must be a finite number",
    ),
    Case(
        "detection score true",
        "score",
        _dets(lambda d: d[0].__setitem__("score", True)),
        r"detection 0: score=True: must be a finite number",
    ),
    Case(
        "detection image_id true",
        "score",
        _dets(lambda d: d[0].__setitem__("image_id", True)),
        r"detection 0: image_id True is not in the ground truth",
    ),
    Case(
        "detection keypoint NaN",
        "score",
        _dets(lambda d: d[0]["keypoints"].__setitem__(5, float("nan"))),
        r"detection 0: keypoints\[5\]=nan: must be a finite number",
    ),
    Case(
        "detection with 14 joints (CrowdPose's) against COCO ground truth",
        "score",
        _dets(lambda d: d[3].__setitem__("keypoints", d[3]["keypoints"][:42])),
        r"detection 3: keypoints has 42 values, expected 51 \(.* 17 joints of dataset=coco\)",
    ),
    Case(
        "ground-truth keypoint NaN",
        "score",
        _gt(lambda gt: gt["annotations"][0]["keypoints"].__setitem__(0, float("nan"))),
        r"annotation 0: keypoints\[0\]=nan: must be a finite number",
    ),
    Case(
        "ground-truth keypoint true",
        "score",
        _gt(lambda gt: gt["annotations"][1]["keypoints"].__setitem__(2, True)),
        r"annotation 1: keypoints\[2\]=True: must be a finite number",
    ),
    Case(
        "ground-truth bbox Infinity",
        "score",
        _gt(lambda gt: gt["annotations"][0]["bbox"].__setitem__(2, float("inf"))),
        r"annotation 0: bbox\[2\]=inf: must be a finite number",
    ),
    Case(
        "ground truth without area (COCO)",
        "score",
        _gt(lambda gt: gt["annotations"][3].pop("area")),
        r"annotation 3: area=None: COCO keypoint AP needs a finite number >= 0",
    ),
    Case(
        "ground truth without bbox",
        "score",
        _gt(lambda gt: gt["annotations"][0].pop("bbox")),
        r"annotation 0 \(id \d+\) has no 'bbox'",
    ),
    Case(
        "ground truth is a number",
        "score",
        lambda folder: [f"results={COCO_DETS}", f"gt={_write(folder, 'gt.json', 42)}"],
        r"must be a JSON object with images, annotations and categories, not a int",
    ),
    Case(
        "ground-truth annotations is a string",
        "score",
        _gt(lambda gt: gt.__setitem__("annotations", "none")),
        r"'annotations' must be a list, not a str",
    ),
    Case(
        "ground-truth annotation is a number",
        "score",
        _gt(lambda gt: gt["annotations"].__setitem__(0, 7)),
        r"annotation 0 must be an object, not 7",
    ),
    Case(
        "CrowdPose ground truth with dataset=coco",
        "score",
        _fixed(f"results={CROWDPOSE_DETS}", f"gt={CROWDPOSE_GT}", "dataset=coco"),
        r"annotation 0 has 14 keypoints \(42 values\), but dataset=coco has 17; "
        r"is it crowdpose ground truth\? then pass dataset=crowdpose",
    ),
    Case(
        "COCO ground truth with dataset=crowdpose",
        "score",
        _fixed(f"results={COCO_DETS}", f"gt={COCO_GT}", "dataset=crowdpose"),
        r"annotation 0 has 17 keypoints \(51 values\), but dataset=crowdpose has 14; "
        r"is it coco ground truth\? then pass dataset=coco",
    ),
    Case(
        "ground-truth annotation id twice",
        "score",
        _gt(lambda gt: gt["annotations"][5].__setitem__("id", gt["annotations"][2]["id"])),
        r"annotation 5: id \d+ is also annotation 2's: ids must be unique",
    ),
    Case(
        "ground-truth num_keypoints a string",
        "score",
        _gt(lambda gt: gt["annotations"][1].__setitem__("num_keypoints", "12")),
        r"annotation 1: num_keypoints='12': must be an integer from 0 to 17",
    ),
    Case(
        "ground-truth area 0 (COCO)",
        "score",
        _gt(lambda gt: gt["annotations"][0].__setitem__("area", 0)),
        r"annotation 0: area=0 for a person with \d+ labelled joints: OKS divides by the area",
    ),
    *[
        Case(
            f"ground truth without {key}",
            "score",
            _gt(lambda gt, key=key: gt["annotations"][2].pop(key)),
            rf"annotation 2 \(id .*\) has no '{key}'",
        )
        for key in ("num_keypoints", "id", "category_id", "iscrowd")
    ],
    Case(
        "ground-truth annotation id a string",
        "score",
        _gt(lambda gt: gt["annotations"][0].__setitem__("id", "a1")),
        r"annotation 0: id='a1': must be an integer",
    ),
    Case(
        "ground-truth image id a float",
        "score",
        _gt(lambda gt: gt["images"][0].__setitem__("id", 1.5)),
        r"image 0: id=1\.5: must be an integer",
    ),
    Case(
        "ground-truth image_id a string",
        "score",
        _gt(lambda gt: gt["annotations"][0].__setitem__("image_id", "1")),
        r"annotation 0: image_id='1': must be an integer id",
    ),
    Case(
        "ground truth with nobody to score",
        "score",
        _gt(lambda gt: [a.__setitem__("num_keypoints", 0) for a in gt["annotations"]]),
        r"nothing to score: every annotation is a crowd or has num_keypoints 0",
    ),
    Case(
        "ground truth nested 100000 deep",
        "score",
        lambda f: [f"results={COCO_DETS}", f"gt={_text(f, 'gt.json', '[' * 10**5 + ']' * 10**5)}"],
        r"ground-truth file .* is nested too deeply",
    ),
    Case(
        "ground truth with a 5000-digit integer",
        "score",
        lambda f: [
            f"results={COCO_DETS}",
            f"gt={_text(f, 'gt.json', HUGE_INTEGER_JSON)}",
        ],
        r"ground-truth file .* holds an unreadable number",
    ),
    Case(
        "detection with an absurd bbox",
        "score",
        _dets(lambda d: d[4].__setitem__("bbox", [0, 0, 1e9, 1e9])),
        r"detection 4 has 'bbox': pycocotools would read the file as box results",
    ),
    Case(
        "detection with a segmentation",
        "score",
        _dets(lambda d: d[0].__setitem__("segmentation", [[0, 0, 1, 1]])),
        r"detection 0 has 'segmentation'",
    ),
    Case(
        "CrowdPose image without crowdIndex",
        "score",
        _gt(lambda gt: gt["images"][0].pop("crowdIndex"), CROWDPOSE_GT, CROWDPOSE_DETS),
        r"image 0: crowdIndex=None: CrowdPose's easy / medium / hard split needs a finite number",
    ),
]

MARKER = "ran.txt"  # what a malicious checkpoint creates in the case's folder if it runs


class _RunsCode:
    """Pickles as a call of ``os.system``: loading it with a full unpickler runs the command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious(folder: Path, name: str = "evil.pt") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "posearch-checkpoint-v1", "model": _RunsCode(folder / MARKER)}, path)
    return path


TINY_DATA = [
    "dataset.synthetic.num_train=6",
    "dataset.synthetic.num_val=2",
    "dataset.synthetic.image_size=64",
]
REFUSED = r"cannot be read as plain tensors: it holds pickled objects \(.*posix\.system.*\)"

UNTRUSTED = [
    Case(
        "malicious checkpoint to evaluate",
        "evaluate",
        lambda f: [f"checkpoint={_malicious(f)}", f"dataset.root={f / 'data'}", *TINY_DATA],
        r"checkpoint .*evil\.pt " + REFUSED,
    ),
    Case(
        "malicious checkpoint to export",
        "export",
        lambda f: [f"checkpoint={_malicious(f)}", f"out={f / 'out'}"],
        r"checkpoint .*evil\.pt " + REFUSED,
    ),
    Case(
        "malicious supernet checkpoint to export",
        "export",
        lambda f: ["arch=litepose_xs", f"supernet={_malicious(f)}", f"out={f / 'out'}"],
        r"checkpoint .*evil\.pt " + REFUSED,
    ),
    Case(
        "malicious last.pt when a training run resumes",
        "train",
        lambda f: [
            f"run_dir={_malicious(f, 'run/checkpoints/last.pt').parents[1]}",
            f"dataset.root={f / 'data'}",
            "input_size=64",
            "trainer.max_steps=1",
            "trainer.batch_size=2",
            "trainer.num_workers=0",
            "trainer.progress=false",
            *TINY_DATA,
        ],
        r"checkpoint .*last\.pt " + REFUSED,
    ),
    Case(
        "malicious release weights to import_release",
        "import_release",
        lambda f: [
            f"arch={DATA / 'litepose_xs_release.json'}",
            f"weights={_malicious(f, 'evil.pth')}",
            f"out={f / 'out'}",
        ],
        r"weights file .*evil\.pth " + REFUSED,
    ),
]


def _arch(change: Callable[[dict], object]) -> Callable[[Path], Path]:
    """LitePose-XS as an arch file after ``change``."""

    def make(folder: Path) -> Path:
        from search_space import get_preset, to_dict

        data = to_dict(get_preset("litepose_xs"))
        change(data)
        return _write(folder, "arch.json", data)

    return make


def _full_folder(folder: Path) -> Path:
    """An earlier export's folder, posearch's marker included (posecore.folders)."""
    from posecore.folders import staged

    out = folder / "out"
    with staged(out, "model", "export", {}) as stage:
        (stage / "model.onnx").write_bytes(b"another export")
    return out


def _a_file(folder: Path) -> Path:
    out = folder / "out"
    out.write_text("not a folder")
    return out


EXPORT = [
    Case(
        "input_size 4096 to export",
        "export",
        lambda f: [f"arch={_arch(lambda d: d.update(input_size=4096))(f)}", f"out={f / 'o'}"],
        r"input_size=4096: must be an integer >= 16 and <= 1024",
    ),
    Case(
        "expansion 1000000 to export",
        "export",
        lambda f: [
            f"arch={_arch(lambda d: d['stages'][0]['blocks'][0].update(expansion=10**6))(f)}",
            f"out={f / 'o'}",
        ],
        r"stages\[0\]\.blocks\[0\]\.expansion=1000000: must be an integer >= 1 and <= 8",
    ),
    Case(
        "export into a folder holding another export",
        "export",
        lambda f: ["arch=litepose_xs", f"out={_full_folder(f)}", "onnx=false"],
        r"out=.*out is not empty \(holds model\.onnx\): give overwrite=true to replace it whole",
    ),
    Case(
        "export to out= that is a file",
        "export",
        lambda f: ["arch=litepose_xs", f"out={_a_file(f)}", "onnx=false"],
        r"out=.*out is a file, not a folder",
    ),
    Case(
        "import_release into a non-empty folder",
        "import_release",
        lambda f: [
            f"arch={DATA / 'litepose_xs_release.json'}",
            f"weights={DATA / 'release_litepose_xs' / 'missing.pth'}",
            f"out={_full_folder(f)}",
        ],
        r"out=.*out is not empty \(holds model\.onnx\)",
    ),
]


def _in(*overrides: str, key: str = "run_dir") -> Callable[[Path], list[str]]:
    """``overrides`` plus ``<key>=<the case's folder>/out`` (nothing lands in outputs/)."""
    return lambda folder: [*overrides, f"{key}={folder / 'out'}"]


def _with_data(*overrides: str) -> Callable[[Path], list[str]]:
    """``overrides`` with the tiny synthetic data under the case's folder (``absent="data"``:
    the command must fail before making it)."""
    return lambda folder: [*overrides, f"dataset.root={folder / 'data'}", *TINY_DATA]


USER_ERRORS = [
    Case(
        "describe with 15 joints",
        "describe",
        _fixed("num_joints=15"),
        r"num_joints=15: must be one of \{14, 17\}",
    ),
    Case(
        "describe with a pattern no preset matches",
        "describe",
        _fixed("presets=nomatch*"),
        r"no preset matches 'nomatch\*'; known presets: \[.*'litepose_xs'",
    ),
    Case(
        "shrink with an unknown path",
        "shrink",
        _fixed("path=nope"),
        r"path='nope': unknown; known paths: \['paper'",
    ),
    Case(
        "shrink from an unknown baseline",
        "shrink",
        _fixed("path=generated", "baseline=nope"),
        r"baseline='nope': unknown preset; HigherHRNet presets: \['higherhrnet_w",
    ),
    Case(
        "shrink from a LitePose baseline",
        "shrink",
        _fixed("path=generated", "baseline=litepose_xs"),
        r"baseline='litepose_xs' is a LitePoseConfig; a shrinking path starts from a HigherHRNet",
    ),
    Case(
        "shrink with more steps than blocks",
        "shrink",
        _fixed("path=generated", "steps=1000"),
        r"from 1 to 72",
    ),
    Case(
        "shrink training with JSON output",
        "shrink",
        _in("train=true", "format=json"),
        r"train=true prints a table: drop format=json \(or use train=false\)",
    ),
    Case(
        "search with an unknown proxy",
        "search",
        _in("proxy=nope"),
        r"unknown proxy 'nope'; known proxies: \[.*'synflow'",
    ),
    Case(
        "search with an unknown sampler",
        "search",
        _in("sampler=grid"),
        r"sampler='grid': must be one of \('evolution', 'random_within', 'nsga2', 'tpe', "
        r"'random'\)",
    ),
    Case(
        "search with an unknown storage scheme",
        "search",
        _in("storage=redis://host/db"),
        r"storage='redis://host/db': use an sqlite://, postgresql:// or mysql:// URL",
    ),
    Case(
        "train with lr 0",
        "train",
        _with_data("trainer.lr=0", "input_size=64"),
        r"trainer\.lr=0(\.0)?: must be > 0",
        absent="data",
    ),
    Case(
        "train a missing arch file",
        "train",
        lambda f: _with_data(f"model={f / 'missing.json'}")(f),
        r"arch='.*missing\.json': is neither a preset \(.*litepose_xs.*\) nor an existing",
        absent="data",
    ),
    Case(
        "evaluate without a model",
        "evaluate",
        _with_data(),
        r"give checkpoint=<file or folder> or arch=<preset or arch file>",
        absent="data",
    ),
    Case(
        "evaluate an unknown preset",
        "evaluate",
        _with_data("arch=litepose_xxl"),
        r"arch='litepose_xxl': is neither a preset \(.*litepose_xs.*\) nor an existing",
        absent="data",
    ),
    Case(
        "train an arch file with a YAML syntax error",
        "train",
        lambda f: _with_data(f"model={_text(f, 'bad.yaml', 'input_size: [1, 2')}")(f),
        r"bad\.yaml=.*is not valid YAML at line 1",
        absent="data",
    ),
    Case(
        "train a binary file as the arch",
        "train",
        lambda f: _with_data(f"model={_text(f, 'arch.yaml', bytes(range(128, 256)))}")(f),
        r"arch\.yaml='<binary>': is not a text file",
        absent="data",
    ),
    Case(
        "search with SQLite storage in a missing folder",
        "search",
        lambda f: [
            f"storage=sqlite:///{f / 'no' / 'such' / 'study.db'}",
            "n_trials=1",
            f"run_dir={f / 'run'}",
            "progress=false",
        ],
        r"storage='sqlite:.*': cannot open this database .*its folder must exist",
    ),
    Case(
        "search with storage that is not a database",
        "search",
        lambda f: [
            f"storage=sqlite:///{_text(f, 'notes.txt', 'not a database' * 100)}",
            "n_trials=1",
            f"run_dir={f / 'run'}",
            "progress=false",
        ],
        r"storage='sqlite:.*notes\.txt': cannot open this database",
    ),
    Case(
        "search with an unreachable PostgreSQL server",
        "search",
        lambda f: [
            "storage=postgresql+psycopg://user@127.0.0.1:9/db",
            "n_trials=1",
            f"run_dir={f / 'run'}",
            "progress=false",
        ],
        r"storage='postgresql.*': cannot open this database \(.*refused",
    ),
    Case(
        "export a release-format arch whose backbone_setting is null",
        "export",
        lambda f: [
            "arch="
            + str(
                _write(
                    f,
                    "release.json",
                    {
                        "img_size": 256,
                        "input_channel": 24,
                        "deconv_setting": [16, 24, 24],
                        "backbone_setting": None,
                    },
                )
            ),
            f"out={f / 'out'}",
        ],
        r"backbone_setting=None: must be a list of stage objects",
    ),
    Case(
        "export a release-format arch with an unknown key",
        "export",
        lambda f: [
            "arch="
            + str(
                _write(
                    f,
                    "release.json",
                    {
                        "img_size": 256,
                        "input_channel": 24,
                        "deconv_setting": [16, 24, 24],
                        "backbone_setting": [],
                        "widht": 2,
                    },
                )
            ),
            f"out={f / 'out'}",
        ],
        r"widht=2: unknown; the keys are",
    ),
    Case(
        "export into a folder that cannot be made",
        "export",
        lambda f: ["arch=litepose_xs", "out=/proc/posearch/out"],
        r"out=/proc/posearch/out: cannot write there",
    ),
    Case(
        "make_synthetic into a folder that cannot be made",
        "make_synthetic",
        lambda f: ["out=/proc/posearch/data"],
        r"out=/proc/posearch/data: cannot write there \(.*\); give a writable out=$",
    ),
    Case(
        "train with a synthetic dataset root that cannot be made",
        "train",
        lambda f: ["dataset.root=/proc/posearch/data", f"run_dir={f / 'run'}"],
        r"dataset.root=/proc/posearch/data: cannot write the synthetic dataset there \(.*\); "
        r"give a writable dataset.root=$",
    ),
    Case(
        "score without its mandatory ground truth",
        "score",
        lambda f: [f"results={COCO_DETS}"],
        r"gt is required: add gt=<value>",
    ),
    Case(
        "export a missing arch file",
        "export",
        lambda f: [f"arch={f / 'missing.json'}", f"out={f / 'out'}"],
        r"arch='.*missing\.json': is neither a preset \(.*litepose_xs.*\) nor an existing",
    ),
]


def _release(change: Callable[[dict], object]) -> Callable[[Path], Path]:
    """The LitePose-XS release file after ``change``."""

    def make(folder: Path) -> Path:
        data = json.loads((DATA / "litepose_xs_release.json").read_text())
        change(data)
        return _write(folder, "release.json", data)

    return make


def _release_block(stage: int, block: int, pair: list) -> Callable[[dict], None]:
    return lambda d: d["backbone_setting"][stage]["block_setting"].__setitem__(block, pair)


MORE_USER_ERRORS = [
    Case(
        "score without its mandatory results",
        "score",
        lambda f: [f"gt={COCO_GT}"],
        r"results is required: add results=<value>",
    ),
    Case(
        "train on COCO without dataset.root",
        "train",
        _in("dataset=coco"),
        r"dataset\.root is required: add dataset\.root=<value>",
    ),
    Case(
        "evaluate a missing checkpoint",
        "evaluate",
        lambda f: _with_data(f"checkpoint={f / 'missing.pt'}")(f),
        r"checkpoint .*missing\.pt does not exist",
        absent="data",
    ),
    Case(
        "export an arch file with a YAML syntax error",
        "export",
        lambda f: [f"arch={_text(f, 'bad.yaml', 'input_size: [1, 2')}", f"out={f / 'out'}"],
        r"bad\.yaml=.*is not valid YAML at line 1",
    ),
    Case(
        "export a release-format arch with an even kernel",
        "export",
        lambda f: [f"arch={_release(_release_block(1, 2, [6, 4]))(f)}", f"out={f / 'out'}"],
        r"backbone_setting\[1\]\.block_setting\[2\]\[1\]=4: must be an odd size",
    ),
    Case(
        "export a release-format arch with an expansion of 100",
        "export",
        lambda f: [f"arch={_release(_release_block(0, 1, [100, 7]))(f)}", f"out={f / 'out'}"],
        r"backbone_setting\[0\]\.block_setting\[1\]\[0\]=100: must be an integer >= 1",
    ),
    Case(
        "export a release-format arch with a block that is not a pair",
        "export",
        lambda f: [f"arch={_release(_release_block(1, 2, [6]))(f)}", f"out={f / 'out'}"],
        r"backbone_setting\[1\]\.block_setting\[2\]=\[6\]: must be an \[expansion, kernel\] pair",
    ),
    Case(
        "export a release-format arch with img_size 4096",
        "export",
        lambda f: [f"arch={_release(lambda d: d.update(img_size=4096))(f)}", f"out={f / 'out'}"],
        r"img_size=4096: must be an integer >= 16 and <= 1024",
    ),
]

RUN_DIR_COMMANDS = ("train", "train_supernet", "search", "ground_truth")

RUN_DIRS = [
    case
    for command in RUN_DIR_COMMANDS
    for case in (
        Case(
            f"{command} with a file as run_dir",
            command,
            lambda f: _with_data(f"run_dir={_a_file(f)}")(f),
            r"run_dir=.*out is a file, not a folder: give another run_dir=",
            absent="data",
        ),
        Case(
            f"{command} with a run_dir under a file",
            command,
            lambda f: _with_data(f"run_dir={_a_file(f) / 'run'}")(f),
            r"run_dir=.*out/run: cannot write there \(Not a directory\); give a writable run_dir=",
            absent="data",
        ),
        Case(
            f"{command} with a run_dir where no folder can be made",
            command,
            _with_data("run_dir=/proc/posearch/run"),
            r"run_dir=/proc/posearch/run: cannot write there \(.*\); give a writable run_dir=",
            absent="data",
        ),
    )
]

CASES = SCORING + UNTRUSTED + EXPORT + USER_ERRORS + MORE_USER_ERRORS + RUN_DIRS


def _run(command: str, overrides: list[str]) -> subprocess.CompletedProcess:
    return commands.run(command, *overrides, timeout=300)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_one_clear_line_and_exit_2(case, tmp_path):
    overrides = case.make(tmp_path)
    if case.command in RUN_DIR_COMMANDS and not any(o.startswith("run_dir=") for o in overrides):
        overrides.append(f"run_dir={tmp_path / 'run'}")  # never the repository's outputs/
    result = _run(case.command, overrides)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    # The error is the last line; before it only progress bars (training makes its data first).
    *before, last = result.stderr.strip().splitlines()
    assert all("img/s" in line for line in before), result.stderr
    assert last.startswith(f"{case.command} failed: "), last
    assert re.search(case.expect, last), last
    assert not (tmp_path / MARKER).exists(), "a file given to posearch ran code"
    if case.absent:
        assert not (tmp_path / case.absent).exists(), "the check should come before this work"


def test_the_malicious_checkpoint_does_run_code_when_fully_unpickled(tmp_path):
    """The probe of the untrusted-file cases is real: a full unpickler runs its command."""
    path = _malicious(tmp_path)
    torch.load(path, weights_only=False)
    assert (tmp_path / MARKER).exists()


def test_only_user_errors_get_one_line_a_bug_keeps_its_traceback(capsys):
    """fail_clearly reports the UserError family and nothing else: a ValueError or KeyError from
    a bug must not pass as a user's mistake."""
    from experiments.cli import fail_clearly
    from posecore.errors import SettingError, UnknownNameError

    with pytest.raises(SystemExit) as exited, fail_clearly("cmd"):
        raise UnknownNameError("unknown thing 'x'; known things: ['y']")
    assert exited.value.code == 2
    assert capsys.readouterr().err == "cmd failed: unknown thing 'x'; known things: ['y']\n"
    with pytest.raises(SystemExit), fail_clearly("cmd"):
        raise SettingError("x=0: must be > 0")
    for bug in (ValueError("bug"), KeyError("bug"), FileNotFoundError("bug")):
        with pytest.raises(type(bug)), fail_clearly("cmd"):
            raise bug


def test_every_error_an_entry_point_reports_is_a_user_error():
    from arch_search.budget import BudgetError
    from bottomup.datasets import DatasetError
    from evaluators.coco_inputs import ResultsError
    from experiments.import_release import ReleaseImportError
    from experiments.shrink_training import StepTrainingError
    from posecore.errors import UserError
    from posenets.checkpoint import CheckpointError
    from posenets.io import OutputFolderError
    from posetrain.trainer import TrainingDiverged
    from search_space import ArchConfigError
    from shrinking import ShrinkPathError

    family = (
        ArchConfigError,
        BudgetError,
        CheckpointError,
        DatasetError,
        OutputFolderError,
        ReleaseImportError,
        ResultsError,
        ShrinkPathError,
        StepTrainingError,
        TrainingDiverged,
    )
    assert [e.__name__ for e in family if not issubclass(e, UserError)] == []


@pytest.mark.parametrize(
    "command, override, key",
    [
        ("ground_truth", "workers=two", "workers"),
        ("rank_proxies", "n_boot=many", "n_boot"),
        ("deconv_ablation", "multiple=eight", "multiple"),
        ("ground_truth", "workerz=2", "workerz"),
        ("train", "eval_max_images=two", "eval_max_images"),
        ("train_supernet", "threads=many", "threads"),
        ("evaluate", "flip=sometimes", "flip"),
        ("train", "trainer.lr=fast", "trainer.lr"),
        ("train", "trainer.batch_size=1.5", "trainer.batch_size"),
        ("train", "loss.push_weight=abc", "loss.push_weight"),
        ("train_supernet", "trainer.gamma=low", "trainer.gamma"),
        ("search", "loss.pull_weight=x", "loss.pull_weight"),
        ("ground_truth", "loss.heatmap_weights=[a,b]", "loss.heatmap_weights"),
        ("train", "trainer.lrr=0.1", "lrr"),
        ("train", "dataset.synthetic.num_train=many", "dataset.synthetic.num_train"),
        ("evaluate", "dataset.val_split=[a,b]", "dataset.val_split"),
        ("search", "dataset.synthetic.max_yaw=wide", "dataset.synthetic.max_yaw"),
        ("ground_truth", "dataset.naem=coco", "naem"),
    ],
)
def test_a_mistyped_override_fails_when_the_config_is_composed(command, override, key, tmp_path):
    """Every entry point reads its config through a ConfigStore schema: a value of the wrong
    type (or an unknown key) fails before the command runs, naming the key (Hydra's message; it
    used to pass, and ``workers=two`` failed later with a TypeError traceback)."""
    run_dir = [] if command == "evaluate" else [f"run_dir={tmp_path / 'out'}"]
    result = _run(command, [override, *run_dir])
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert re.search(rf"Key '{key}' not in|full_key: {key}\b", result.stderr), result.stderr
    assert not (tmp_path / "out").exists()


CONF = REPO / "experiments" / "conf"
DATASETS = sorted(path.stem for path in (CONF / "dataset").glob("*.yaml"))


def _dataset_commands() -> list[str]:
    from experiments.cli import _groups

    return [c for c in commands.entry_points() if "dataset" in _groups(c)]


def _compose(command: str, overrides: list[str]):
    import importlib

    from hydra import compose, initialize_config_dir

    importlib.import_module(f"experiments.{command}")  # its ConfigStore schema
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(command, overrides=overrides)


def _yaml_keys(option: str) -> dict:
    """The keys a ``conf/dataset`` file gives (with those of the files its defaults list
    names), each mapped to the set of its own keys (None for a scalar)."""
    import yaml

    data = yaml.safe_load((CONF / "dataset" / f"{option}.yaml").read_text())
    keys: dict = {}
    for base in data.pop("defaults", []):
        if base != "_self_":
            keys |= _yaml_keys(base)
    for key, value in data.items():
        inner = set(value) if isinstance(value, dict) else None
        keys[key] = (keys.get(key) or set()) | inner if inner is not None else keys.get(key)
    return keys


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("command", _dataset_commands())
def test_every_dataset_config_composes_under_the_dataset_schema(command, dataset):
    """The ``dataset`` group was untyped (``dataset: Any``): ``dataset.val_split=[a,b]`` or
    ``dataset.synthetic.num_train=many`` passed composition and failed, if at all, deep in the
    loader. Every option of the group composes under ``DatasetSchema`` in every command that
    composes the group, and what is stored of it (run settings, checkpoints, ground-truth
    records) is what the YAML file gives, no key added (a resume compares it key for key)."""
    from omegaconf import OmegaConf

    from experiments.data import DatasetSchema, dataset_settings

    cfg = _compose(command, [f"dataset={dataset}", "dataset.root=/data"])  # coco's is ???
    assert OmegaConf.get_type(cfg, "dataset") is DatasetSchema
    stored = dataset_settings(cfg.dataset)
    given = _yaml_keys(dataset)
    assert set(stored) == set(given) and "???" not in json.dumps(stored)
    if stored["synthetic"] is not None:
        assert set(stored["synthetic"]) == given["synthetic"]
    with pytest.raises(Exception, match=r"dataset\.val_split=\[a,b\]"):
        _compose(command, [f"dataset={dataset}", "dataset.val_split=[a,b]"])
    if stored["synthetic"] is not None:
        with pytest.raises(Exception, match="num_train=many"):
            _compose(command, [f"dataset={dataset}", "dataset.synthetic.num_train=many"])


@pytest.mark.parametrize(
    "override, named",
    [
        ("input_size=96", "input_size 64, this command has 96"),
        ("trainer.batch_size=3", "batch_size 2, this command has 3"),
        ("dataset.synthetic.num_train=7", "dataset.synthetic.num_train 1000, this command has 7"),
        ("dataset=synthetic", "dataset.synthetic.num_train 1000, this command has 2000"),
        ("dataset.val_split=train", 'dataset.val_split "val", this command has "train"'),
    ],
)
def test_a_train_resume_with_another_size_batch_or_data_names_it(tmp_path, override, named):
    """Issue 27: a resume with another input size or batch size ran another model (a traceback
    after ``arch.json`` was rewritten). The settings stored in ``last.pt`` are refused naming
    the first that differs, the typed dataset section's included; the same command resumes."""
    from experiments.train_settings import check_train_resume, run_settings
    from posenets.checkpoint import save_checkpoint
    from posetrain.resume import SETTINGS_KEY, ResumeMismatch

    base = [f"run_dir={tmp_path}", "model=litepose_xs", "input_size=64", "trainer.batch_size=2",
            "dataset=synthetic_demo"]  # fmt: skip
    same = _compose("train", base)
    save_checkpoint({SETTINGS_KEY: run_settings(same)}, tmp_path / "checkpoints" / "last.pt")
    check_train_resume(_compose("train", base))
    with pytest.raises(ResumeMismatch, match=re.escape(named)):
        check_train_resume(_compose("train", [*base, override]))


def test_synthetic_options_left_out_of_the_yaml_keep_the_generator_defaults():
    """``min_visible_share`` and ``jpeg_quality`` are not in ``conf/dataset/synthetic.yaml``: typed
    and overridable, they still enter the cache key with ``SyntheticOptions``' defaults (the
    cache folder of the data did not change)."""
    from bottomup.datasets import SyntheticOptions
    from experiments.data import synthetic_options

    cfg = _compose("train", ["dataset=synthetic_demo", "dataset.synthetic.jpeg_quality=80"])
    options = synthetic_options(cfg.dataset)
    assert options.min_visible_share == SyntheticOptions().min_visible_share
    assert options.jpeg_quality == 80 and options.num_train == 1000


def test_the_run_dir_check_makes_the_folder_and_leaves_what_it_holds(tmp_path):
    """A rerun resumes from its run folder: the check must not add or remove anything there."""
    from posecore.folders import check_run_dir

    made = check_run_dir(tmp_path / "new" / "run")
    assert made.is_dir() and list(made.iterdir()) == []
    (made / "last.pt").write_bytes(b"kept")
    check_run_dir(made)
    assert [p.name for p in made.iterdir()] == ["last.pt"]
    assert (made / "last.pt").read_bytes() == b"kept"


@pytest.mark.parametrize("dataset", ["coco", "crowdpose"])
def test_a_synthetic_option_given_to_real_data_is_refused_naming_it(dataset):
    """``dataset=coco dataset.synthetic.num_train=5`` was an OmegaConf AssertionError traceback
    while Hydra composed the config (the real datasets' block was null). The block is now empty:
    the override composes, and the value, which real data would ignore, is refused by name."""
    from experiments.data import synthetic_options
    from posecore.errors import SettingError

    assert (
        synthetic_options(_compose("train", [f"dataset={dataset}", "dataset.root=/d"]).dataset)
        is None
    )
    cfg = _compose(
        "train", [f"dataset={dataset}", "dataset.root=/d", "dataset.synthetic.num_train=5"]
    )
    with pytest.raises(
        SettingError,
        match=rf"dataset\.synthetic\.num_train applies only to dataset=synthetic \({dataset}",
    ):
        synthetic_options(cfg.dataset)


def test_train_with_a_synthetic_option_on_real_data_fails_in_one_line(tmp_path):
    overrides = ["dataset=coco", f"dataset.root={tmp_path}", "dataset.synthetic.num_train=5"]
    result = _run("train", [*overrides, f"run_dir={tmp_path / 'out'}"])
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "train failed: dataset.synthetic.num_train applies only to dataset=synthetic"
        in result.stderr
    )
