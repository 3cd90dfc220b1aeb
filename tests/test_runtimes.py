"""Runtime exports (ONNX Runtime, OpenVINO, ExecuTorch): each file computes what eager PyTorch
does, int8 stays close, the export entry point writes them with their provenance, calibration
images are drawn without generating a dataset, and ``clock=cpu`` sees each runtime's work.

OpenVINO and ExecuTorch are the ``[edge]`` extra: their tests skip, saying so, only where the
package is not installed (``pip install -e .[edge]``). The AP of a trained model per runtime and
precision is measured by ``benchmarks/runtime_precision.py --checkpoint``, too slow for a test.
"""

import json
import time

import numpy as np
import pytest
import torch
from test_export import TINY_DATA, _compose_export, _perturbed_folder

from posecore.errors import SettingError
from posenets.io import load_standalone
from posenets.runtimes import (
    PROVENANCE_FILE,
    RUNTIMES,
    available,
    export_runtime,
    open_runner,
    runtime_file,
)

# fp32: the same arithmetic in another order (BN folded, other kernels); int8: the error of
# 8-bit activations and weights (measured on this fixture: at most 10.0-10.4% of the largest
# output, correlation 0.9991-0.9999, ONNX Runtime and OpenVINO alike).
FP32_TOLERANCE = 1e-4  # of the largest |output|
INT8_TOLERANCE = 0.2  # of the largest |output|
INT8_CORRELATION = 0.995  # of the maps with eager PyTorch's


def _needs(runtime: str):
    return pytest.mark.skipif(
        not available(runtime),
        reason=f"{runtime} is not installed here (the [edge] extra: pip install -e .[edge])",
    )


EACH = [pytest.param(name, marks=_needs(name)) for name in RUNTIMES]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 64-px LitePose-XS away from its initial weights, its model.onnx and 4 images."""
    folder = tmp_path_factory.mktemp("runtimes")
    source = _perturbed_folder(folder / "model")
    model, config = load_standalone(source)
    from posenets.io import export_onnx

    export_onnx(model, config, source / "model.onnx")
    rng = np.random.default_rng(0)
    images = [rng.standard_normal((3, 64, 64)).astype(np.float32) for _ in range(4)]
    with torch.no_grad():
        eager = [o.numpy() for o in model.eval()(torch.from_numpy(images[0][None]))]
    return source, model, config, images, eager


@pytest.mark.parametrize("runtime", EACH)
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_each_runtime_computes_what_eager_pytorch_does(trained, runtime, precision):
    folder, model, config, images, eager = trained
    written = export_runtime(folder, model, config, runtime, precision, images)
    assert runtime_file(folder, runtime, precision) in written
    outputs = open_runner(runtime_file(folder, runtime, precision), runtime, threads=1)(
        images[0][None]
    )
    assert [o.shape for o in outputs] == [e.shape for e in eager]
    for out, ref in zip(outputs, eager, strict=True):
        assert out.dtype == np.float32
        scale = np.abs(ref).max()
        assert scale > 0.01  # the maps are not ~0: an error would show
        if precision == "fp32":
            assert np.abs(out - ref).max() <= FP32_TOLERANCE * scale
        else:
            assert np.abs(out - ref).max() <= INT8_TOLERANCE * scale
            assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] >= INT8_CORRELATION
            assert np.abs(out - ref).max() > 0  # it is quantized: not the fp32 file again


@pytest.mark.parametrize("runtime", [pytest.param(n, marks=_needs(n)) for n in RUNTIMES])
def test_the_cpu_clock_sees_the_runtimes_work_at_one_thread(trained, runtime):
    """``clock=cpu`` times the calling thread: at one thread each runtime must run the network
    there, not in a worker thread (the process's CPU time would then exceed the thread's)."""
    folder, model, config, images, _ = trained
    export_runtime(folder, model, config, runtime, "fp32")
    run = open_runner(runtime_file(folder, runtime, "fp32"), runtime, threads=1)
    batch = np.repeat(images[0][None], 1, axis=0)
    run(batch)
    thread, process = time.thread_time(), time.process_time()
    for _ in range(20):
        run(batch)
    thread, process = time.thread_time() - thread, time.process_time() - process
    assert thread > 0 and thread >= 0.8 * process, (thread, process)


@_needs("openvino")
def test_export_writes_every_runtime_and_precision_with_provenance(tmp_path):
    from experiments.export import export

    source = _perturbed_folder(tmp_path / "trained")
    # ExecuTorch's lowering takes minutes on a shared CPU: its files are checked by the parity
    # test above; this one checks the entry point, its runtime list and provenance.
    runtimes = [n for n in ("onnx", "openvino") if available(n)]
    out = tmp_path / "out"
    cfg = _compose_export(
        f"checkpoint={source}", f"out={out}", "precision=[fp32,int8,fp16]",
        f"runtime=[{','.join(runtimes)}]", "calibration_images=3", *TINY_DATA,
    )  # fmt: skip
    export(cfg)
    provenance = json.loads((out / PROVENANCE_FILE).read_text())
    for runtime in runtimes:
        for precision in RUNTIMES[runtime].precisions:
            path = runtime_file(out, runtime, precision)
            assert path.is_file(), path
            if (runtime, precision) != ("onnx", "fp32"):
                record = provenance[path.name]
                assert (record["runtime"], record["precision"]) == (runtime, precision)
                assert record["runtime_version"]
                if precision == "int8":
                    assert record["calibration"]["images"] == 3
    assert not (out / "model.openvino.fp16.xml").exists()  # OpenVINO offers no fp16 here


def test_runtime_settings_fail_clearly(tmp_path):
    from experiments.export import export

    source = _perturbed_folder(tmp_path / "trained")
    for overrides, message in (
        (["runtime=tflite"], "runtime='tflite': must be one of"),
        (["runtime=openvino", "precision=fp16"], "precision=fp16: none of runtime=.*offers it"),
        (["runtime=openvino", "onnx=false"], "start from the ONNX model"),
    ):
        cfg = _compose_export(f"checkpoint={source}", f"out={tmp_path / 'o'}", *overrides)
        with pytest.raises(SettingError, match=message):
            export(cfg)


def test_synthetic_calibration_images_are_the_datasets_without_generating_it(tmp_path):
    """The rendered picks equal what the dataset path gives (a generated tiny dataset), and
    drawing them writes no dataset."""
    from experiments.data import load_datasets
    from experiments.export import calibration_images

    source = _perturbed_folder(tmp_path / "trained")
    root = tmp_path / "data"
    cfg = _compose_export(
        f"checkpoint={source}", f"out={tmp_path / 'o'}", "calibration_images=4",
        f"dataset.root={root}", *TINY_DATA,
    )  # fmt: skip
    config = load_standalone(source)[1]
    drawn = calibration_images(cfg, config)
    assert not root.exists()  # nothing generated
    train, _ = load_datasets(cfg.dataset)
    picks = np.linspace(0, len(train) - 1, 4).round().astype(int)
    from bottomup.transforms import resize_for_test

    expected = [resize_for_test(train[int(i)].image, config.input_size)[0].numpy() for i in picks]
    assert len(drawn) == 4
    for a, b in zip(drawn, expected, strict=True):
        np.testing.assert_array_equal(a, b)
