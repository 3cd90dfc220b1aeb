"""The training loss: masking, the associative-embedding terms, and agreement with a loop."""

import math

import torch

from bottomup.losses import BottomUpLoss, associative_embedding_loss, heatmap_loss


def _loop_ae(tags, joints, k):
    """The reference's per-image, per-person loops, for comparison."""
    n, _, h, w = tags.shape
    d = tags.shape[1] // k
    pushes, pulls = [], []
    for i in range(n):
        flat = tags[i].reshape(k, d, h * w)
        means, pull = [], 0.0
        for person in joints[i]:
            vals = [flat[j, :, int(person[j, 0])] for j in range(k) if person[j, 1] > 0]
            if not vals:
                continue
            vals = torch.stack(vals)
            mean = vals.mean(0)
            means.append(mean)
            pull = pull + ((vals - mean) ** 2).sum(-1).mean()
        m = len(means)
        pulls.append(pull / m if m else torch.tensor(0.0))
        if m < 2:
            pushes.append(torch.tensor(0.0))
            continue
        a = torch.stack(means)
        diff = ((a[:, None] - a[None]) ** 2).sum(-1)
        push = (torch.exp(-diff).sum() - m) / ((m - 1) * m) * 0.5
        pushes.append(push)
    return torch.stack(pushes).mean(), torch.stack([torch.as_tensor(p) for p in pulls]).mean()


def _random_joints(n, m, k, hw, generator):
    idx = torch.randint(0, hw, (n, m, k), generator=generator)
    valid = (torch.rand(n, m, k, generator=generator) > 0.4).long()
    valid[:, -1] = 0  # padding slots, as the codec leaves them
    return torch.stack([idx, valid], dim=-1)


def test_associative_embedding_matches_loop_reference():
    g = torch.Generator().manual_seed(0)
    for dim in (1, 2):
        k, h, w = 5, 6, 7
        tags = torch.randn(3, k * dim, h, w, generator=g)
        joints = _random_joints(3, 4, k, h * w, g)
        joints[2, :, :, 1] = 0  # an image without persons
        joints[1, 1:, :, 1] = 0  # an image with one person: no push
        push, pull = associative_embedding_loss(tags, joints, k)
        ref_push, ref_pull = _loop_ae(tags, joints, k)
        assert torch.allclose(push, ref_push, atol=1e-6)
        assert torch.allclose(pull, ref_pull, atol=1e-6)


def test_pull_zero_for_consistent_tags_and_push_limits():
    k, h, w = 3, 4, 4
    tags = torch.zeros(1, k, h, w)
    joints = torch.zeros(1, 2, k, 2, dtype=torch.long)
    joints[0, 0, :, 0] = torch.tensor([0, 1, 2])
    joints[0, 1, :, 0] = torch.tensor([5, 6, 7])
    joints[..., 1] = 1
    flat = tags.view(1, k, h * w)
    flat[0, :, [0, 1, 2]] = 0.0  # person 0 tag 0 at its own joints
    flat[0, :, [5, 6, 7]] = 10.0  # person 1 tag 10
    push, pull = associative_embedding_loss(tags, joints, k)
    assert pull.item() == 0.0
    assert push.item() < 1e-30
    flat[0, :, [5, 6, 7]] = 0.0  # both persons share a tag: maximal push
    push, _ = associative_embedding_loss(tags, joints, k)
    assert math.isclose(push.item(), 0.5)


def test_heatmap_loss_ignores_masked_pixels():
    target = torch.zeros(1, 2, 4, 4)
    pred = torch.zeros(1, 2, 4, 4)
    pred[0, :, 0, 0] = 3.0
    mask = torch.ones(1, 4, 4)
    assert heatmap_loss(pred, target, mask).item() > 0
    mask[0, 0, 0] = 0
    assert heatmap_loss(pred, target, mask).item() == 0.0


def test_total_loss_weights_and_gradients():
    g = torch.Generator().manual_seed(1)
    k, h, w = 4, 8, 8
    quarter = torch.randn(2, 2 * k, h, w, generator=g, requires_grad=True)
    half = torch.randn(2, k, 2 * h, 2 * w, generator=g, requires_grad=True)
    targets = {
        "heatmaps_quarter": torch.rand(2, k, h, w, generator=g),
        "masks_quarter": torch.ones(2, h, w),
        "heatmaps_half": torch.rand(2, k, 2 * h, 2 * w, generator=g),
        "masks_half": torch.ones(2, 2 * h, 2 * w),
        "joints": _random_joints(2, 3, k, h * w, g),
    }
    parts = BottomUpLoss(k)(  # default weights 1, 1, 1e-3, 1e-3
        [quarter, half], targets
    )
    expected = sum(parts[name] for name in ("heatmap_quarter", "heatmap_half", "push", "pull"))
    assert torch.allclose(parts["loss"], expected)
    push, pull = associative_embedding_loss(quarter[:, k:], targets["joints"], k)
    assert torch.allclose(parts["push"], push * 1e-3)
    parts["loss"].backward()
    assert quarter.grad is not None and quarter.grad[:, k:].abs().sum() > 0
    assert half.grad is not None and torch.isfinite(half.grad).all()


def test_foreground_weight_weighs_errors_near_joints():
    target = torch.zeros(1, 2, 4, 4)
    target[0, 0, 1, 1] = 1.0
    mask = torch.ones(1, 4, 4)
    pred = torch.full_like(target, 0.5)
    plain = heatmap_loss(pred, target, mask)
    assert heatmap_loss(pred, target, mask, 0.0) == plain
    weighted = heatmap_loss(pred, target, mask, 9.0)  # the joint pixel's error counts 10 times
    assert torch.isclose(weighted, plain + 9 * 0.25 / 32)
    background_only = torch.zeros_like(target)
    assert heatmap_loss(pred, background_only, mask, 9.0) == heatmap_loss(
        pred, background_only, mask
    )
