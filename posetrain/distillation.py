"""Distillation from a fixed, trained teacher: a training step that adds the teacher's terms.

    python -m experiments.train +experiment=demo teacher=outputs/teacher/checkpoints/best.pt

The teacher is any trained network with the student's output layout (joints and tag dimension):
a ``checkpoints/*.pt`` of ``experiments.train`` or a standalone folder (``arch.json`` +
``model.pt``), read by ``posenets.io.load_standalone``. It stays in eval mode, its weights frozen
and
outside the student's module tree (never in the student's checkpoint), and runs without autograd.
A teacher made for another input size sees each batch resized to its size, and its maps are
resized to the student's (bilinear, cell centres aligned, as ``bottomup.codec`` places cells).

Resume stays exact: the teacher is a pure function of its file, so a restarted run sees the same
teacher outputs; ``fingerprint`` goes into the checkpoint and a resume with another teacher or
other weights is refused (``Trainer(resume_must_match=...)``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from posecore.errors import MissingFileError, SettingError
from posenets.checkpoint import CheckpointError
from posenets.io import load_standalone
from posetrain.steps import autocast_for
from search_space import ArchConfig, arch_hash


def load_teacher(path: str | Path) -> tuple[nn.Module, ArchConfig]:
    """The frozen eval-mode teacher in ``path`` and its architecture."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(
            f"teacher={path} does not exist: give a checkpoint of experiments.train "
            "(<run>/checkpoints/best.pt) or a standalone folder (arch.json + model.pt)"
        )
    try:
        model, config = load_standalone(path)
    except CheckpointError as err:
        raise CheckpointError(f"teacher={path}: {err}") from None
    model.eval().requires_grad_(False)
    return model, config


def check_teacher(path: str | Path, teacher: ArchConfig, student: ArchConfig) -> None:
    """Refuse a teacher whose joints or tag dimension differ from the student's (the message
    names both): its maps could not be compared channel by channel."""
    if (teacher.num_joints, teacher.tag_dim) != (student.num_joints, student.tag_dim):
        raise SettingError(
            f"teacher={path} predicts {teacher.num_joints} joints with tag_dim {teacher.tag_dim}, "
            f"the student {student.num_joints} joints with tag_dim {student.tag_dim}: a teacher "
            "must have the student's output layout (same dataset joints, same tag_dim=)"
        )


def fingerprint(model: nn.Module, config: ArchConfig) -> dict[str, str]:
    """What identifies a teacher in a checkpoint: its architecture hash and a hash of its weights
    (a retrained teacher under the same path is another teacher; a moved file is the same)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return {"arch": arch_hash(config), "weights": digest.hexdigest()[:16]}


def resize_to(output: Tensor, like: Tensor) -> Tensor:
    """``output`` resized to ``like``'s height and width (unchanged when they already match)."""
    if output.shape[-2:] == like.shape[-2:]:
        return output
    return F.interpolate(output, size=like.shape[-2:], mode="bilinear", align_corners=False)


class DistillationStep:
    """The standard step plus distillation terms: student forward, the pose loss, the teacher's
    outputs (no grad) and ``distill_fn(student, teacher, targets)``'s parts, added into
    ``loss`` and logged beside it.

    ``teacher_size`` / ``student_size``: input sizes; when they differ the batch is resized by
    their ratio for the teacher and its maps come back at the student's map sizes."""

    manages_ddp = False

    def __init__(
        self,
        loss_fn: nn.Module,
        distill_fn: nn.Module,
        teacher: nn.Module,
        teacher_size: int,
        student_size: int,
        amp: bool = True,
    ):
        self.loss_fn = loss_fn
        self.distill_fn = distill_fn
        self.teacher = teacher.eval().requires_grad_(False)
        self.scale = teacher_size / student_size
        self.amp = amp

    @torch.no_grad()
    def teacher_outputs(self, image: Tensor, like: list[Tensor]) -> list[Tensor]:
        self.teacher.to(image.device)  # a no-op after the first batch
        self.teacher.eval()
        if self.scale != 1:
            h, w = image.shape[-2:]
            size = (round(h * self.scale), round(w * self.scale))
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        with autocast_for(image, self.amp):
            outputs = self.teacher(image)
        return [resize_to(o.float(), s) for o, s in zip(outputs, like, strict=True)]

    def __call__(self, model, image, targets, global_step):
        with autocast_for(image, self.amp):
            outputs = model(image)
        outputs = [o.float() for o in outputs]
        parts = self.loss_fn(outputs, targets)
        distill = self.distill_fn(outputs, self.teacher_outputs(image, outputs), targets)
        parts["loss"] = parts["loss"] + sum(distill.values())
        parts.update(distill)
        if torch.isfinite(parts["loss"]):
            parts["loss"].backward()
        return {k: v.detach() for k, v in parts.items()}
