"""Proxy evaluators: cheap scores that stand in for trained accuracy during search.

Lifecycle (in the spirit of Optuna's ``BaseSampler``): a search builds each proxy once with
``get_proxy(name, **options)``; for every candidate architecture that passed the MACs budget it
calls ``proxy.score(config, context)`` exactly once and records the float it returns (higher means
better for every proxy here, so a search can always maximise). ``context`` carries what a proxy
may need: calibration batches (dicts with ``image`` and codec targets) at a requested size, the
loss, a seed, a device, and the resolution rule. Every proxy scores a candidate at *its own*
resolution gene mapped by ``context.resolution_rule`` (``search_space.resolution``; the identity
by default), the rule the ground truth is trained under: scoring every candidate at one fixed size
would make the resolution gene change only the MACs, and a budgeted search would then drift toward
low resolution whatever it really costs in accuracy. ``proxy.cost`` says roughly what a call
costs, so tables can show it beside the score.

Zero-cost proxies here are adapted to the pose loss (heatmap MSE + associative embedding):

* ``params`` / ``macs``: the baselines every proxy must beat.
* ``synflow``: data-free; sum over parameters of |theta * dR/dtheta| with R the sum of the
  outputs of the network with |weights| on an all-ones input (Tanaka et al. 2020).
* ``grad_norm``: the norm of the pose-loss gradient on a calibration batch.
* ``snip``: sum of |theta * dL/dtheta| for the pose loss (Lee et al. 2019).
* ``jacob_cov``: NASWOT's log-determinant of the kernel of binary ReLU codes over a batch
  (Mellor et al. 2021), on the 1/4-resolution features' pre-activations of every ReLU.

Proxies that train or load trained weights (``short_train``, ``supernet``) live in
``arch_search.trained_proxies``, those that combine proxies over a ground truth (``combined``,
``learned``) in ``arch_search.rankers``. The registry that sees all of them is
``arch_search.proxies`` (``get_proxy``, ``list_proxies``), above every module that defines one:
this module only records what ``register_proxy`` is given, and names nothing above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from evaluators.macs_fast import fast_macs
from posenets import build_model
from search_space.config import ArchConfig
from search_space.resolution import IDENTITY, ResolutionRule


@dataclass
class ProxyContext:
    """What proxies may use. ``batches(size)`` yields dicts with ``image`` (``size`` square) and
    the loss's targets at that size."""

    batches: Callable[[int], Iterable[dict[str, Tensor]]] | None = None
    loss_fn: nn.Module | None = None
    seed: int = 0
    device: str = "cpu"
    resolution_rule: ResolutionRule = IDENTITY  # candidate's resolution gene -> scored size
    train_samples: Any = None  # bottomup TrainingSamples: proxies that train draw from it
    val_dataset: Any = None  # a KeypointDataset: proxies that score AP evaluate on it

    def scored_size(self, config: ArchConfig) -> int | tuple[int, int]:
        """The input size ``config`` is scored at: its resolution gene under the rule. A
        top-down member's crop ``(h, w)`` is its own size, not a resolution gene: the crop a
        person is warped to, whatever the image's size, so no rule maps it."""
        if isinstance(config.input_size, tuple):
            return config.input_size
        return self.resolution_rule.size(config.input_size)


class Proxy:
    """Base class: subclasses set ``name`` and ``cost`` and implement ``score``."""

    name = "proxy"
    cost = "unknown"
    needs_data = False
    # Hooks a search reads instead of testing the proxy's type: the space the proxy's own
    # weights span (None: the search's default space), and ``exported_model`` below.
    space = None

    def exported_model(self, config: ArchConfig, context: ProxyContext):
        """``(model, weights provenance)`` for a search's export of ``config`` when this proxy
        holds weights for it (the supernet proxy), or None: the export builds fresh ones."""
        return None

    def score(self, config: ArchConfig, context: ProxyContext) -> float:
        raise NotImplementedError

    def _model(self, config: ArchConfig, context: ProxyContext) -> nn.Module:
        torch.manual_seed(context.seed)
        return build_model(config).to(context.device)

    def _loss_gradients(self, config, context) -> list[tuple[Tensor, Tensor]]:
        """(weight, gradient) pairs of the pose loss on one calibration batch, at init."""
        model = self._model(config, context).train()
        batch = self._batch(context, context.scored_size(config))
        image = batch.pop("image")
        context.loss_fn(model(image), batch)["loss"].backward()
        return [(p.detach(), p.grad) for p in model.parameters() if p.grad is not None]

    def _batch(self, context: ProxyContext, size: int) -> dict[str, Tensor]:
        if context.batches is None:
            raise ValueError(f"proxy {self.name!r} needs calibration batches (context.batches)")
        batch = next(iter(context.batches(size)))
        return {k: v.to(context.device) for k, v in batch.items()}


_PROXIES: dict[str, type[Proxy]] = {}  # name -> class; read through arch_search.proxies


def register_proxy(cls: type[Proxy]) -> type[Proxy]:
    """Record ``cls`` under ``cls.name`` (a class decorator)."""
    _PROXIES[cls.name] = cls
    return cls


def registered_proxies() -> dict[str, type[Proxy]]:
    """The proxies registered so far: those of the modules imported so far. For all of them,
    ``arch_search.proxies``."""
    return dict(_PROXIES)


@register_proxy
class ParamsProxy(Proxy):
    name, cost = "params", "build the model (~10 ms)"

    def score(self, config, context):
        return float(sum(p.numel() for p in build_model(config).parameters()))


@register_proxy
class MacsProxy(Proxy):
    name, cost = "macs", "config walk (<1 ms)"

    def score(self, config, context):
        return float(fast_macs(config).macs)


@register_proxy
class SynflowProxy(Proxy):
    name, cost = "synflow", "one forward + backward, no data"

    def score(self, config, context):
        model = self._model(config, context).double().eval()
        with torch.no_grad():  # synflow scores the network with all weights made positive
            for p in model.state_dict().values():
                if p.is_floating_point():
                    p.abs_()
        size = context.scored_size(config)
        height, width = size if isinstance(size, tuple) else (size, size)
        ones = torch.ones(1, 3, height, width, dtype=torch.double, device=context.device)
        total = sum(o.sum() for o in model(ones))
        total.backward()
        score = sum(
            (p.detach() * p.grad).abs().sum() for p in model.parameters() if p.grad is not None
        )
        return float(torch.log(score + 1e-30))


@register_proxy
class GradNormProxy(Proxy):
    name, cost, needs_data = "grad_norm", "one forward + backward on a batch", True

    def score(self, config, context):
        grads = [g for _, g in self._loss_gradients(config, context)]
        return float(torch.stack([g.norm() ** 2 for g in grads]).sum().sqrt())


@register_proxy
class SnipProxy(Proxy):
    name, cost, needs_data = "snip", "one forward + backward on a batch", True

    def score(self, config, context):
        pairs = self._loss_gradients(config, context)
        return float(sum((p * g).abs().sum() for p, g in pairs))


@register_proxy
class JacobCovProxy(Proxy):
    """NASWOT: networks whose ReLUs split the images of a batch into distinct activation patterns
    score higher."""

    name, cost, needs_data = "jacob_cov", "one forward on a batch", True

    def score(self, config, context):
        model = self._model(config, context).train()
        image = self._batch(context, context.scored_size(config))["image"]
        n = image.shape[0]
        codes: list[Tensor] = []

        def hook(_module, _inputs, output):
            codes.append((output.detach() > 0).reshape(n, -1).double())

        relus = [m for m in model.modules() if isinstance(m, nn.ReLU | nn.ReLU6)]
        handles = [m.register_forward_hook(hook) for m in relus]
        try:
            with torch.no_grad():
                model(image)
        finally:
            for handle in handles:
                handle.remove()
        binary = torch.cat(codes, dim=1)
        kernel = binary @ binary.T + (1 - binary) @ (1 - binary).T
        sign, logdet = np.linalg.slogdet(kernel.cpu().numpy())
        return float(logdet) if sign > 0 else float("-inf")
