"""Distillation from a fixed teacher: the loss, the step, the teacher checks, exact resume."""

import pytest
import torch

from bottomup.datasets import SyntheticOptions, build_dataset
from bottomup.losses import BottomUpLoss, DistillationConfig, DistillationLoss
from bottomup.training_data import TrainingSamples
from posecore.errors import MissingFileError, SettingError, UserError
from posenets import build_model
from posenets.checkpoint import load_checkpoint
from posenets.io import save_standalone
from posetrain.distillation import DistillationStep, check_teacher, fingerprint, load_teacher
from posetrain.trainer import Trainer, TrainerConfig
from search_space import get_preset

K = 14


def _config(size=64, **overrides):
    return get_preset("litepose_xs", input_size=size, **overrides)


def _model(config, seed):
    torch.manual_seed(seed)
    return build_model(config)


def _targets(n=2, size=64, persons=2):
    """Masks of ones and ``persons`` annotated persons at random quarter-map cells."""
    q, h = size // 4, size // 2
    g = torch.Generator().manual_seed(0)
    joints = torch.zeros(n, persons, K, 2, dtype=torch.long)
    joints[..., 0] = torch.randint(0, q * q, (n, persons, K), generator=g)
    joints[..., 1] = (torch.rand(n, persons, K, generator=g) > 0.2).long()
    return {
        "masks_quarter": torch.ones(n, q, q),
        "masks_half": torch.ones(n, h, h),
        "heatmaps_quarter": torch.zeros(n, K, q, q),
        "heatmaps_half": torch.zeros(n, K, h, h),
        "joints": joints,
    }


WEIGHTS = DistillationConfig(1.0, 1.0)


def _step(teacher, teacher_config, student_config, weights=WEIGHTS):
    return DistillationStep(
        BottomUpLoss(K),
        DistillationLoss(K, weights, foreground_weight=20.0),
        teacher,
        teacher_config.input_size,
        student_config.input_size,
    )


def _saved_teacher(tmp_path, config, seed=0):
    folder = save_standalone(_model(config, seed), config, tmp_path / "teacher", onnx=False)
    return load_teacher(folder)


def test_distillation_is_zero_when_the_student_is_the_teacher(tmp_path):
    config = _config()
    teacher, teacher_config = _saved_teacher(tmp_path, config)
    image = torch.randn(2, 3, 64, 64)
    same = _model(config, 0).eval()  # eval: BN as the teacher's
    parts = _step(teacher, teacher_config, config)(same, image, _targets(), 0)
    assert parts["distill_heatmap"] == 0 and parts["distill_tag"] == 0
    other = _model(config, 1).eval()
    parts = _step(teacher, teacher_config, config)(other, image, _targets(), 0)
    assert parts["distill_heatmap"] > 0 and parts["distill_tag"] > 0
    pose = BottomUpLoss(K)([o.float() for o in other(image)], _targets())["loss"]
    total = pose + parts["distill_heatmap"] + parts["distill_tag"]
    assert torch.allclose(parts["loss"], total)


def test_tag_distillation_ignores_a_constant_tag_offset():
    student = [torch.randn(2, 2 * K, 16, 16), torch.randn(2, K, 32, 32)]
    shifted = [student[0].clone(), student[1]]
    shifted[0][:, K:] += 3.0  # the same grouping, other absolute tags
    loss = DistillationLoss(K, DistillationConfig(1.0, 1.0))(student, shifted, _targets())
    assert loss["distill_tag"] < 1e-10 and loss["distill_heatmap"] == 0


def test_the_teacher_stays_frozen_in_eval_mode_while_the_student_trains(tmp_path):
    config = _config()
    teacher, teacher_config = _saved_teacher(tmp_path, config)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = _model(config, 1).train()
    _step(teacher, teacher_config, config)(student, torch.randn(2, 3, 64, 64), _targets(), 0)
    assert not teacher.training
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items()), "BN stats"
    assert any(p.grad is not None for p in student.parameters())


def test_a_teacher_at_another_input_size_sees_its_size_and_is_resized(tmp_path):
    student_config, teacher_config = _config(64), _config(128)
    teacher, loaded = _saved_teacher(tmp_path, teacher_config)
    seen = []
    teacher.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[-1]))
    step = _step(teacher, loaded, student_config)
    student = _model(student_config, 1)
    outputs = student(torch.randn(2, 3, 64, 64))
    resized = step.teacher_outputs(torch.randn(2, 3, 64, 64), outputs)
    assert seen == [128]
    assert [o.shape for o in resized] == [o.shape for o in outputs]
    parts = step(student, torch.randn(2, 3, 64, 64), _targets(), 0)
    assert torch.isfinite(parts["loss"])


def test_a_teacher_with_another_output_layout_is_refused(tmp_path):
    student = _config()
    with pytest.raises(SettingError, match="17 joints with tag_dim 1.*14 joints with tag_dim 1"):
        check_teacher("t.pt", _config(num_joints=17), student)
    with pytest.raises(SettingError, match="tag_dim 2.*tag_dim 1"):
        check_teacher("t.pt", _config(tag_dim=2), student)
    check_teacher("t.pt", _config(128), student)  # another input size is fine
    with pytest.raises(MissingFileError, match="teacher="):
        load_teacher(tmp_path / "nope.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="teacher="):
        load_teacher(tmp_path / "empty")


def test_distillation_weights_are_checked():
    with pytest.raises(SettingError, match="distill.tag_weight"):
        DistillationConfig(1.0, -1.0)
    with pytest.raises(SettingError, match="both 0"):
        DistillationConfig(0.0, 0.0)


def _trainer(tmp_path, run_dir, teacher, teacher_config, max_steps, fp=None):
    options = SyntheticOptions(num_train=4, num_val=1, image_size=64)
    data = build_dataset("synthetic", "train", tmp_path / "data", options, progress=False)
    config = _config()
    settings = TrainerConfig(
        epochs=10,
        max_steps=max_steps,
        batch_size=2,
        schedule="constant",
        checkpoint_every=1,
        eval_every_epochs=100,
        progress=False,
    )
    torch.manual_seed(settings.seed)
    model = build_model(config)
    step = _step(teacher, teacher_config, config)
    return Trainer(
        model,
        step.loss_fn,
        TrainingSamples(data, 64),
        settings,
        run_dir,
        step=step,
        extra_state={"teacher": fp or fingerprint(teacher, teacher_config)},
        resume_must_match=("teacher",),
    )


def test_a_resumed_distillation_run_ends_with_the_same_weights(tmp_path):
    teacher, teacher_config = _saved_teacher(tmp_path, _config(), seed=3)
    _trainer(tmp_path, tmp_path / "full", teacher, teacher_config, 4).fit()
    _trainer(tmp_path, tmp_path / "resumed", teacher, teacher_config, 2).fit()
    _trainer(tmp_path, tmp_path / "resumed", teacher, teacher_config, 4).fit()
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 4
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert "teacher" not in str(list(a["model"])), "the teacher is not part of the student"
    other = fingerprint(teacher, teacher_config) | {"weights": "0" * 16}
    with pytest.raises(SettingError, match="mix two runs"):
        _trainer(tmp_path, tmp_path / "resumed", teacher, teacher_config, 6, fp=other).fit()


def test_in_place_distillation_is_the_plain_mse_of_both_heatmaps():
    """The supernet's in-place distillation is the one distillation loss, every pixel, no tags:
    exactly the MSE of the 1/4 and 1/2 heatmaps that ``SandwichStep`` once wrote out itself."""
    import torch.nn.functional as F

    from bottomup.losses import in_place_distillation
    from bottomup.outputs import split_quarter

    gen = torch.Generator().manual_seed(0)
    k, d = 3, 1

    def outputs():
        return [torch.randn(2, k * (1 + d), 8, 8, generator=gen), torch.randn(2, k, 16, 16)]

    student, teacher = outputs(), outputs()
    parts = in_place_distillation(k)(student, teacher, {})  # no targets: nothing is masked
    expected = F.mse_loss(student[0][:, :k], teacher[0][:, :k]) + F.mse_loss(student[1], teacher[1])
    assert sum(parts.values()).item() == expected.item()
    heat, tags = split_quarter(student[0], k)
    assert heat.shape[1] == k and tags.shape[1] == k * d
    assert heat.data_ptr() == student[0].data_ptr()  # a view, heatmaps first
