"""The HigherHRNet training loss: masked heatmap MSE at both resolutions plus associative embedding.

Targets come from the codec (``bottomup/codec.py``): per resolution ``heatmaps (N, K, h, w)`` and
``masks (N, h, w)`` (1 = use, 0 = ignore), and for the tag loss at 1/4 ``joints (N, M, K, 2)``
holding ``[flat index into h*w, valid]`` for up to M persons. Model outputs follow the models'
convention: ``out_quarter (N, K + K*D, h, w)`` (heatmaps, then joint-major tags of dimension D) and
``out_half (N, K, 2h, 2w)``.

Everything is vectorised over images and persons: no Python loop over persons, so the loss costs
the same whether a batch holds 2 or 30 people.

:class:`DistillationLoss` compares a student's outputs with a fixed teacher's (``posetrain/
distillation.py`` runs the teacher): heatmaps everywhere, tags at the annotated joints.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from bottomup.outputs import split_quarter
from posecore.errors import SettingError


@dataclass(frozen=True)
class LossConfig:
    """Loss weights (the reference recipe: heatmaps 1 and 1, push and pull 1e-3).

    ``foreground_weight`` (0 in the reference) weighs each heatmap pixel's squared error by
    ``1 + foreground_weight * target``: joints cover a few percent of a map, so under plain MSE
    a network first sits on the all-zero prediction for many steps. Short CPU runs (the demo)
    raise it to leave that plateau sooner."""

    heatmap_weights: tuple[float, float] = (1.0, 1.0)  # 1/4, 1/2
    push_weight: float = 1e-3
    pull_weight: float = 1e-3
    foreground_weight: float = 0.0


def heatmap_loss(
    pred: Tensor, target: Tensor, mask: Tensor | None, foreground_weight: float = 0.0
) -> Tensor:
    """Masked MSE, averaged per image then over the batch; pixels near joints weigh
    ``1 + foreground_weight * target``.

    pred, target: (N, K, h, w); mask: (N, h, w), or None for every pixel (then, without a
    foreground weight, exactly ``F.mse_loss``). Returns a scalar.
    """
    if mask is None and not foreground_weight:
        return ((pred - target) ** 2).mean()
    weight = mask[:, None] if mask is not None else torch.ones_like(target[:, :1])
    if foreground_weight:
        weight = weight * (1 + foreground_weight * target)
    return ((pred - target) ** 2 * weight).mean()


def gather_tags(tags: Tensor, joints: Tensor, num_joints: int) -> Tensor:
    """Tag vectors at the annotated joints.

    tags: (N, K * D, h, w), joint-major; joints: (N, M, K, 2). Returns (N, M, K, D).
    """
    n, channels, h, w = tags.shape
    dim = channels // num_joints
    flat = tags.reshape(n, num_joints, dim, h * w)
    index = joints[..., 0].clamp(0, h * w - 1).long()  # (N, M, K)
    index = index.permute(0, 2, 1)[:, :, None, :].expand(n, num_joints, dim, index.shape[1])
    gathered = torch.gather(flat, 3, index)  # (N, K, D, M)
    return gathered.permute(0, 3, 1, 2)


def associative_embedding_loss(
    tags: Tensor, joints: Tensor, num_joints: int
) -> tuple[Tensor, Tensor]:
    """Push and pull losses (Newell et al.), per image then averaged over the batch.

    pull: mean squared distance of a person's joint tags to the person's mean tag, averaged over
    persons. push: mean over ordered pairs of distinct persons of exp(-||mean_i - mean_j||^2),
    halved as in the reference. Images with fewer than two persons contribute no push.
    """
    values = gather_tags(tags, joints, num_joints)  # (N, M, K, D)
    valid = (joints[..., 1] > 0).to(values.dtype)  # (N, M, K)
    counts = valid.sum(dim=2)  # (N, M)
    person = (counts > 0).to(values.dtype)  # (N, M)
    safe_counts = counts.clamp(min=1)
    means = (values * valid[..., None]).sum(dim=2) / safe_counts[..., None]  # (N, M, D)

    sq_dev = ((values - means[:, :, None]) ** 2).sum(dim=-1)  # (N, M, K)
    per_person_pull = (sq_dev * valid).sum(dim=2) / safe_counts  # (N, M)
    num_persons = person.sum(dim=1)  # (N,)
    pull = (per_person_pull * person).sum(dim=1) / num_persons.clamp(min=1)

    diff = ((means[:, :, None] - means[:, None]) ** 2).sum(dim=-1)  # (N, M, M)
    pair = person[:, :, None] * person[:, None, :]
    pair = pair * (1 - torch.eye(pair.shape[1], dtype=pair.dtype, device=pair.device))
    num_pairs = num_persons * (num_persons - 1)
    push = (torch.exp(-diff) * pair).sum(dim=(1, 2)) / num_pairs.clamp(min=1) * 0.5
    return push.mean(), pull.mean()


@dataclass(frozen=True)
class DistillationConfig:
    """Weights of the distillation terms (``distill.*`` in ``experiments.train``).

    ``heatmap_weight``: the student's heatmaps against the teacher's at both resolutions (masked,
    foreground-weighted MSE as the pose loss, with the teacher's maps as targets).
    ``tag_weight``: the student's tags against the teacher's at the annotated joints, each centred
    on its image's mean tag (a tag's absolute value carries nothing, only its differences do)."""

    heatmap_weight: float = 1.0
    tag_weight: float = 0.05

    def __post_init__(self) -> None:
        for name in ("heatmap_weight", "tag_weight"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < float("inf")):
                raise SettingError(f"distill.{name}={value!r}: must be a number >= 0")
        if self.heatmap_weight == 0 and self.tag_weight == 0:
            raise SettingError(
                "distill.heatmap_weight and distill.tag_weight are both 0: a teacher would "
                "change nothing; give one a weight > 0, or drop teacher="
            )


def centred_joint_tags(tags: Tensor, joints: Tensor, num_joints: int) -> tuple[Tensor, Tensor]:
    """Tags at the annotated joints minus their image's mean over those joints, and the valid
    mask: ``(N, M, K, D)``, ``(N, M, K)``."""
    values = gather_tags(tags, joints, num_joints)
    valid = (joints[..., 1] > 0).to(values.dtype)
    count = valid.sum(dim=(1, 2)).clamp(min=1)  # (N,)
    mean = (values * valid[..., None]).sum(dim=(1, 2)) / count[:, None]  # (N, D)
    return values - mean[:, None, None], valid


class DistillationLoss(nn.Module):
    """Student against teacher outputs of the same shapes: ``{'distill_heatmap',
    'distill_tag'}``, weighted. Zero when the two are equal.

    The one distillation of posearch: from a fixed trained teacher (``posetrain.distillation``,
    masked like the pose loss) and in place, from the supernet's largest member to the others
    (``supernet.training.SandwichStep``: :func:`in_place_distillation`, every pixel, heatmaps
    only). ``masked=False`` compares every pixel; a zero ``tag_weight`` skips the tags."""

    def __init__(
        self,
        num_joints: int,
        config: DistillationConfig,
        foreground_weight: float = 0.0,
        masked: bool = True,
    ):
        super().__init__()
        self.num_joints = num_joints
        self.config = config
        self.foreground_weight = foreground_weight
        self.masked = masked

    def forward(
        self, student: list[Tensor], teacher: list[Tensor], targets: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        k, fw = self.num_joints, self.foreground_weight
        (s_quarter, s_half), (t_quarter, t_half) = student, teacher
        (s_heat, s_tags), (t_heat, t_tags) = (
            split_quarter(s_quarter, k),
            split_quarter(t_quarter, k),
        )
        masks = (targets["masks_quarter"], targets["masks_half"]) if self.masked else (None, None)
        heat = heatmap_loss(s_heat, t_heat, masks[0], fw)
        heat = heat + heatmap_loss(s_half, t_half, masks[1], fw)
        if self.config.tag_weight:
            s_tags, valid = centred_joint_tags(s_tags, targets["joints"], k)
            t_tags, _ = centred_joint_tags(t_tags, targets["joints"], k)
            sq = ((s_tags - t_tags) ** 2).sum(dim=-1) * valid  # (N, M, K)
            tag = (sq.sum(dim=(1, 2)) / valid.sum(dim=(1, 2)).clamp(min=1)).mean()
        else:
            tag = heat.new_zeros(())
        return {
            "distill_heatmap": heat * self.config.heatmap_weight,
            "distill_tag": tag * self.config.tag_weight,
        }


class BottomUpLoss(nn.Module):
    """The total loss and its parts, for logging: ``{'loss', 'heatmap_quarter', 'heatmap_half',
    'push', 'pull'}``."""

    def __init__(self, num_joints: int, config: LossConfig = LossConfig()):
        super().__init__()
        self.num_joints = num_joints
        self.config = config

    def forward(self, outputs: list[Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor]:
        k = self.num_joints
        quarter, half = outputs
        heatmaps, tags = split_quarter(quarter, k)
        w_quarter, w_half = self.config.heatmap_weights
        parts = {
            "heatmap_quarter": heatmap_loss(
                heatmaps,
                targets["heatmaps_quarter"],
                targets["masks_quarter"],
                self.config.foreground_weight,
            )
            * w_quarter,
            "heatmap_half": heatmap_loss(
                half, targets["heatmaps_half"], targets["masks_half"], self.config.foreground_weight
            )
            * w_half,
        }
        push, pull = associative_embedding_loss(tags, targets["joints"], k)
        parts["push"] = push * self.config.push_weight
        parts["pull"] = pull * self.config.pull_weight
        parts["loss"] = sum(parts.values())
        return parts


def in_place_distillation(num_joints: int) -> DistillationLoss:
    """The supernet's in-place distillation: each member's heatmaps (1/4 and 1/2) against the
    largest member's, plain MSE over every pixel, no tags (``supernet.training``)."""
    return DistillationLoss(num_joints, DistillationConfig(1.0, 0.0), masked=False)
