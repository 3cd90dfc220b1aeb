"""Where a network's first weights come from: a supernet member, a standalone folder, a checkpoint.

``experiments.export supernet=`` and ``experiments.train init=`` both take a member's weights
through :func:`supernet_member`: sliced from the supernet by name and its BN statistics
recalibrated on training batches of the given data, through the search's own exporter
(``SupernetProxy.subnet``), so the weights a search scored, the ones an export writes and the ones
a fine-tune starts from are the same tensors. :func:`inherit_into` is ``train``'s ``init=``:
the source read (a supernet checkpoint: the member ``config`` stands for; anything else through
``posenets.inherit.read_weights``), copied in by ``posenets.inherit.inherit``, and a provenance
record for the run's checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from torch import nn

from arch_search.trained_proxies import SupernetProxy
from experiments.proxy_data import proxy_context
from posecore.errors import MissingFileError, SettingError
from posenets.checkpoint import load_checkpoint
from posenets.inherit import Transfer, file_sha256, inherit, provenance, read_weights
from posenets.io import MODEL_FILE
from search_space import ArchConfig
from supernet.checkpoint import SUPERNET_KEY, open_supernet

RECALIBRATION_SEED = 0  # export's default: train init=<supernet> gives the export's weights


def supernet_member(
    path: str | Path,
    config: ArchConfig,
    dataset: DictConfig,
    recalibrate: bool = True,
    batches: int = 8,
    seed: int = RECALIBRATION_SEED,
) -> nn.Module:
    """``config``'s weights from the supernet at ``path``, BN statistics recalibrated on
    ``batches`` batches of 8 training images of ``dataset`` at ``config.input_size`` (or the
    supernet's mixed statistics with ``recalibrate=False``)."""
    if not recalibrate:
        loaded = open_supernet(path)
        loaded.check_member(config)
        return loaded.net.export(config)
    if batches < 1:
        raise SettingError(f"recalibration_batches={batches}: must be >= 1 (or recalibrate=false)")
    proxy = SupernetProxy(str(path), batches)
    context = proxy_context(dataset, seed=seed, tag_dim=config.tag_dim)
    return proxy.subnet(config, context)


def supernet_origin(
    path: str | Path, dataset: DictConfig, recalibrate: bool, batches: int, seed: int
) -> dict[str, Any]:
    """The provenance of :func:`supernet_member`'s weights."""
    how = (
        {"recalibration_batches": batches, "recalibration_data": dataset.name, "seed": seed}
        if recalibrate
        else {"recalibration_batches": 0}
    )
    return provenance("supernet", path, **how)


def init_file(init: str | Path) -> Path:
    """The file ``init=`` reads: ``model.pt`` of a folder, else the path itself."""
    path = Path(init)
    if not path.exists():
        raise MissingFileError(
            f"init={path} does not exist: give a standalone folder (arch.json + model.pt), a "
            "checkpoint of experiments.train or a supernet checkpoint of experiments.train_supernet"
        )
    return path / MODEL_FILE if path.is_dir() else path


def is_supernet(init: str | Path) -> bool:
    path = Path(init)
    return path.is_file() and SUPERNET_KEY in load_checkpoint(path)


def init_fingerprint(init: str | Path, mode: str, scope: str, batches: int) -> dict[str, Any]:
    """What identifies ``init=`` in a run's settings: the weights file's hash (a moved file is
    the same start, a retrained one another), the mode, the scope and, for a supernet, the
    recalibration batches."""
    record = {"sha256": file_sha256(init_file(init)), "mode": mode, "scope": scope}
    if is_supernet(init):
        record["recalibration_batches"] = batches
    return record


def inherit_into(
    model: nn.Module,
    config: ArchConfig,
    init: str | Path,
    mode: str,
    scope: str,
    dataset: DictConfig,
    batches: int,
) -> tuple[Transfer, dict[str, Any]]:
    """``init``'s weights copied into ``model`` (built from ``config``); the transfer and the
    provenance record (``inherited``) the run's checkpoints carry."""
    file = init_file(init)
    if is_supernet(file):
        member = supernet_member(file, config, dataset, batches=batches)
        source, source_config = member.state_dict(), config
        origin = supernet_origin(file, dataset, True, batches, RECALIBRATION_SEED)
    else:
        trained, source_config, origin, file = read_weights(init)
        source = trained.state_dict()
    done = inherit(model, config, source, source_config, mode, scope)
    record = provenance("inherited", file, mode=mode, scope=scope, source=origin, **done.counts())
    return done, record
