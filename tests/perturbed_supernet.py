"""A supernet whose weights cannot hide a slicing mistake (shared by the supernet tests)."""

import torch

from search_space import get_preset
from supernet import LitePoseSupernet


def perturbed_supernet(preset: str, input_size: int, seed: int = 0) -> LitePoseSupernet:
    """``preset``'s supernet with BN statistics and kernel transforms away from their initial
    values, so that a slicing or transform mistake cannot hide behind identities."""
    torch.manual_seed(seed)
    net = LitePoseSupernet(get_preset(preset, input_size=input_size))
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    with torch.no_grad():
        for name, param in net.named_parameters():
            if "transforms" in name:
                param.add_(0.05 * torch.randn_like(param))
    return net.eval()
