"""BN recalibration: exact population statistics for used layers, untouched unused ones."""

import torch
from torch import nn

from search_space import get_preset
from search_space.space import LitePoseSpace
from supernet import LitePoseSupernet
from supernet.recalibrate import recalibrate_bn


def test_statistics_are_the_population_mean_and_variance():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4))
    batches = [torch.randn(2, 3, 5, 5) * (i + 1) + i for i in range(3)]
    recalibrate_bn(model, batches, num_batches=3)
    with torch.no_grad():
        acts = torch.cat([model[0](b) for b in batches])
    channels = acts.transpose(0, 1).reshape(4, -1)
    assert torch.allclose(model[1].running_mean, channels.mean(1), atol=1e-5)
    # fvcore pools the per-batch (unbiased) variances, which differs from the variance of all
    # pixels at once by the per-batch n / (n - 1) factors (here 50 pixels per batch).
    assert torch.allclose(model[1].running_var, channels.var(1), rtol=2e-2)
    assert not model.training


def test_unused_supernet_layers_keep_their_statistics():
    torch.manual_seed(0)
    net = LitePoseSupernet(get_preset("litepose_supernet", input_size=64))
    space = LitePoseSpace(largest=net.largest, resolutions=(64,))
    net.set_active(space.smallest())  # stage 4 keeps 6 of its 10 blocks
    unused = net.stages[3][9].project[1]
    unused.running_mean.fill_(0.25)
    used = net.stages[3][0].project[1]
    before = used.running_mean.clone()
    recalibrate_bn(net, [torch.randn(2, 3, 64, 64) for _ in range(2)], num_batches=2)
    assert torch.all(unused.running_mean == 0.25)
    assert not torch.equal(used.running_mean, before)
