"""The training loop: Adam with the reference schedule, exact resume, DDP, AMP, NaN guard, logs.

Lifecycle of ``Trainer.fit()``:

1. If ``run_dir/checkpoints/last.pt`` exists, everything is restored from it: weights, optimiser,
   schedule, the best score so far and the data position (epoch, batch in epoch). The sampler's
   order is a pure function of (seed, epoch) and every sample's augmentation a pure function of
   (seed, epoch, index), so the run continues with exactly the batches an uninterrupted run would
   have seen next: nothing lost, nothing repeated.
2. Each step: forward (bf16 autocast on CUDA when ``amp``), loss, NaN / inf check, backward,
   optional gradient clipping, optimiser and schedule steps.
3. Every ``checkpoint_every`` steps and at each epoch's end, rank 0 writes ``last.pt`` atomically;
   after an evaluation that improves the score it also writes ``best.pt``.
4. After a SIGINT / SIGTERM (inside ``posecore.interrupts.stop_on_signals``) the step under way
   finishes, ``last.pt`` is written and :class:`~posecore.interrupts.Interrupted` is raised; every
   rank of a distributed run stops after the same step.

A non-finite loss stops the run with :class:`TrainingDiverged` before anything is written, so the
last checkpoint on disk is the last good one.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from posecore.errors import SettingError, UserError
from posecore.interrupts import Interrupted, requested
from posenets.checkpoint import load_checkpoint, save_checkpoint
from posetrain.distributed import DistContext
from posetrain.sampler import ResumableSampler
from posetrain.steps import StandardStep, TrainStep

SCHEDULES = ("multistep", "cosine", "constant")


class TrainingDiverged(UserError, RuntimeError):
    """The loss became NaN or infinite (the message says which settings to change)."""


@dataclass
class TrainerConfig:
    """How to train. Milestones are fractions of the total steps (HigherHRNet: epochs 200 and
    260 of 300, i.e. 2/3 and 13/15), so a shortened run keeps the schedule's shape."""

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 16
    lr: float = 4e-3
    weight_decay: float = 0.0
    schedule: str = "multistep"
    milestones: tuple[float, ...] = (2 / 3, 13 / 15)
    gamma: float = 0.1
    warmup_steps: int = 0
    grad_clip: float | None = None
    amp: bool = True
    channels_last: bool = True
    seed: int = 0
    num_workers: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    eval_every_epochs: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise SettingError(f"trainer.schedule={self.schedule!r}: must be one of {SCHEDULES}")
        for name in ("epochs", "batch_size", "checkpoint_every", "log_every", "eval_every_epochs"):
            if getattr(self, name) < 1:
                raise SettingError(f"trainer.{name}={getattr(self, name)}: must be >= 1")
        if self.lr <= 0:
            raise SettingError(f"trainer.lr={self.lr}: must be > 0")
        # Numbers that cannot be right (NaN passes every comparison; max_steps=-1 trained 0
        # steps, gamma=-1 a negative learning rate, both with exit status 0).
        _check_number("lr", self.lr, 0, strict=True)
        _check_number("gamma", self.gamma, 0, strict=True)
        _check_number("weight_decay", self.weight_decay, 0)
        for name in ("warmup_steps", "seed", "num_workers"):
            _check_number(name, getattr(self, name), 0)
        if self.max_steps is not None:
            _check_number("max_steps", self.max_steps, 1)
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, 0, strict=True)
        for i, milestone in enumerate(self.milestones):
            _check_number(f"milestones[{i}]", milestone, 0, strict=True)


def _check_number(name: str, value, low: float, strict: bool = False) -> None:
    """``trainer.<name>`` a finite number >= ``low`` (> with ``strict``)."""
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise SettingError(
            f"trainer.{name}={value}: must be a finite number {'>' if strict else '>='} {low}"
        )


def short_schedule(steps: int, batch_size: int, lr: float, seed: int, items: int) -> TrainerConfig:
    """A fixed number of cosine-decayed steps with nothing saved, logged or evaluated on the
    way: how proxies and short comparisons train a candidate (``items``: training samples, for
    the epochs the sampler needs to reach ``steps``)."""
    return TrainerConfig(
        epochs=max(1, -(-steps * batch_size // items)),
        max_steps=steps,
        batch_size=batch_size,
        lr=lr,
        schedule="cosine",
        warmup_steps=min(10, steps // 5),
        amp=False,
        seed=seed,
        num_workers=0,
        checkpoint_every=10**9,
        log_every=10**9,
        eval_every_epochs=10**9,
        progress=False,
    )


@dataclass
class TrainResult:
    steps: int
    epochs_done: int
    best_score: float | None
    last_checkpoint: Path
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Trains ``model`` on ``dataset`` whose items are dicts with an ``image`` and the targets
    the loss expects. Items are fetched by key ``(epoch, index, extra)`` and must be a pure
    function of it; ``extra`` is ``batch_extra(epoch, batch_in_epoch)`` (None by default), which
    is how a batch-wide choice such as the input resolution reaches every sample of the batch.

    The caller draws the model's initial weights after ``torch.manual_seed(config.seed)``: torch
    starts each process from a random seed, and the trainer, handed a built model, seeds torch only
    for what follows (without that, two identical runs differed at their first loss).

    ``step`` (default: ``StandardStep(loss_fn)``) computes one batch's forward and backward.
    ``evaluate`` (optional) maps the bare model to a dict of scores; ``score_key`` picks the one
    that decides the best checkpoint (higher is better). ``resume_must_match``: keys of
    ``extra_state`` that a resumed checkpoint must hold unchanged (e.g. the distillation teacher's
    fingerprint): a rerun with other values is refused instead of silently mixing two runs.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        dataset: Dataset,
        config: TrainerConfig,
        run_dir: str | Path,
        ctx: DistContext | None = None,
        evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
        score_key: str = "AP",
        extra_state: dict[str, Any] | None = None,
        step: TrainStep | None = None,
        batch_extra: Callable[[int, int], Any] | None = None,
        resume_must_match: tuple[str, ...] = (),
    ):
        self.config = config
        self.ctx = ctx or DistContext()
        self.run_dir = Path(run_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.step_fn = step or StandardStep(loss_fn, amp=config.amp)
        self.batch_extra = batch_extra
        self.dataset = dataset
        self.evaluate = evaluate
        self.score_key = score_key
        self.extra_state = extra_state or {}
        self.resume_must_match = resume_must_match
        torch.manual_seed(config.seed)

        self.model = model.to(self.ctx.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.train_model: nn.Module = self.model
        if self.ctx.distributed and not self.step_fn.manages_ddp:
            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=ids)

        self.sampler = ResumableSampler(
            len(dataset), config.batch_size, config.seed, self.ctx.rank, self.ctx.world_size
        )
        self.total_steps = self._total_steps()
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_score: float | None = None
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ schedule
    def _total_steps(self) -> int:
        steps = self.config.epochs * self.sampler.batches_per_epoch
        return min(steps, self.config.max_steps) if self.config.max_steps else steps

    def _lr_factor(self, step: int) -> float:
        cfg = self.config
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        progress = step / max(self.total_steps, 1)
        if cfg.schedule == "multistep":
            return warm * cfg.gamma ** sum(progress >= m for m in cfg.milestones)
        if cfg.schedule == "cosine":
            return warm * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        return warm

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "best_score": self.best_score,
            "trainer_config": asdict(self.config),
            "history": self.history,
            **self.extra_state,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        for key in self.resume_must_match:
            if state.get(key) != self.extra_state.get(key):
                raise SettingError(
                    f"{self.checkpoint_dir / 'last.pt'} was written with {key} "
                    f"{state.get(key)}, this run has {self.extra_state.get(key)}: resuming would "
                    "mix two runs; rerun with the original settings, or give another run_dir"
                )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = state["step"]
        self.epoch = state["epoch"]
        self.batch_in_epoch = state["batch_in_epoch"]
        self.best_score = state["best_score"]
        self.history = list(state.get("history", []))

    def _save(self, name: str) -> Path:
        path = self.checkpoint_dir / name
        if self.ctx.is_main:
            save_checkpoint(self.state_dict(), path)
        return path

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        last = self.checkpoint_dir / "last.pt"
        if last.exists():
            self._restore(load_checkpoint(last))
            self._drop_log_rows_after(self.step)
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc="train",
            unit="step",
            disable=not (self.config.progress and self.ctx.is_main),
            dynamic_ncols=True,
        )
        log_path = self.run_dir / "metrics.csv"
        try:
            while self.step < self.total_steps:
                self._run_epoch(bar, log_path)
                if self.batch_in_epoch >= self.sampler.batches_per_epoch:
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    self._end_of_epoch()
                    self._stop_if_asked()
        finally:
            bar.close()
        if self.ctx.distributed:
            # DDP syncs buffers (BN statistics) from rank 0 at each forward, so after the last
            # step they still differ; make every rank hold rank 0's, as a checkpoint would.
            for buffer in self.model.buffers():
                torch.distributed.broadcast(buffer, src=0)
        evaluated = self.history and self.history[-1]["step"] == self.step
        if self.evaluate is not None and not evaluated:
            self._evaluate_and_keep_best()
        path = self._save("last.pt")
        return TrainResult(self.step, self.epoch, self.best_score, path, self.history)

    def _loader(self) -> DataLoader:
        self.sampler.set_position(self.epoch, self.batch_in_epoch)
        keyed = _KeyedSampler(self.sampler, self.batch_extra)
        return DataLoader(
            self.dataset,
            batch_size=self.config.batch_size,
            sampler=keyed,
            num_workers=self.config.num_workers,
            drop_last=True,
            pin_memory=self.ctx.device.type == "cuda",
        )

    def _run_epoch(self, bar: tqdm, log_path: Path) -> None:
        self.train_model.train()
        tick = time.perf_counter()
        for batch in _batches(self._loader()):
            parts = self._train_step(batch)
            self.step += 1
            self.batch_in_epoch += 1
            bar.update(1)
            now = time.perf_counter()
            images_per_s = self.config.batch_size * self.ctx.world_size / max(now - tick, 1e-9)
            tick = now
            if self.step % self.config.log_every == 0 or self.step == self.total_steps:
                row = {
                    "step": self.step,
                    "epoch": self.epoch,
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "images_per_s": images_per_s,
                    **{k: v for k, v in parts.items()},
                }
                bar.set_postfix(loss=f"{parts['loss']:.5f}", img_s=f"{images_per_s:.1f}")
                self._log(log_path, row)
            if self.step % self.config.checkpoint_every == 0:
                self._save("last.pt")
            self._stop_if_asked()
            if self.step >= self.total_steps:
                break

    def _diverged(self, loss: float, batch: dict[str, torch.Tensor]) -> TrainingDiverged:
        """Blame the data when the batch itself is not finite (a NaN keypoint used to be blamed
        on the learning rate), and name a checkpoint only where one exists."""
        where = f"at step {self.step + 1} (epoch {self.epoch})"
        last = self.checkpoint_dir / "last.pt"
        kept = (
            f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was saved"
        )
        bad = [
            key
            for key, value in batch.items()
            if torch.is_tensor(value) and value.is_floating_point() and not value.isfinite().all()
        ]
        if bad:
            return TrainingDiverged(
                f"loss became {loss} {where} because the training batch holds NaN or infinite "
                f"values in {bad[0]!r}: the dataset has a non-finite keypoint or pixel (not a "
                f"learning-rate problem); fix its annotations; {kept}"
            )
        return TrainingDiverged(
            f"loss became {loss} {where}; nothing was saved after it, {kept}. Lower trainer.lr "
            f"(now {self.config.lr}) or set trainer.grad_clip (e.g. 1.0), then rerun the same "
            "command to resume."
        )

    def _train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        device = self.ctx.device
        image = batch.pop("image").to(device, non_blocking=True)
        if self.config.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        targets = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        self.optimizer.zero_grad(set_to_none=True)
        parts = self.step_fn(self.train_model, image, targets, self.step)
        loss = parts["loss"]
        if not torch.isfinite(loss):
            raise self._diverged(loss.item(), {"image": image, **targets})
        if self.ctx.distributed and self.step_fn.manages_ddp:
            _all_reduce_gradients(self.model, self.ctx.world_size)
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return {k: float(v) for k, v in parts.items()}

    def _stop_if_asked(self) -> None:
        """After a SIGINT / SIGTERM: keep this step in ``last.pt`` and raise ``Interrupted``."""
        signum = requested() or 0
        if self.ctx.distributed:  # a rank that stopped alone would hang the others' all-reduce
            flag = torch.tensor([signum], device=self.ctx.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            signum = int(flag.item())
        if not signum:
            return
        path = self._save("last.pt")
        raise Interrupted(
            signum,
            f"training stopped after step {self.step} of {self.total_steps}, saved in {path}; "
            "rerun the same command to resume",
        )

    def _end_of_epoch(self) -> None:
        if self.evaluate is not None and self.epoch % self.config.eval_every_epochs == 0:
            self._evaluate_and_keep_best()
        self._save("last.pt")

    def _evaluate_and_keep_best(self) -> None:
        if not self.ctx.is_main:
            return
        scores = self.evaluate(self.model)
        record = {"step": self.step, "epoch": self.epoch, **scores}
        self.history.append(record)
        self._log(self.run_dir / "eval.csv", record)
        score = scores.get(self.score_key)
        if score is not None and (self.best_score is None or score > self.best_score):
            self.best_score = float(score)
            self._save("best.pt")

    def _drop_log_rows_after(self, step: int) -> None:
        """After a resume, forget log rows of steps the restart will run again."""
        for name in ("metrics.csv", "eval.csv"):
            path = self.run_dir / name
            if not self.ctx.is_main or not path.exists():
                continue
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            kept = [row for row in rows if int(row["step"]) <= step]
            if len(kept) != len(rows):
                with open(path, "w", newline="") as handle:
                    writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                    writer.writeheader()
                    writer.writerows(kept)

    def _log(self, path: Path, row: dict[str, Any]) -> None:
        if not self.ctx.is_main:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)


def _all_reduce_gradients(model: nn.Module, world_size: int) -> None:
    """Average gradients over ranks in one flat all-reduce (parameters without a gradient this
    step count as zero, identically on every rank)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def _batches(loader: DataLoader):
    """``loader``'s batches; a user error raised in a worker process comes out as it would
    with ``num_workers=0``, one line.

    torch re-raises a worker's exception in the main process as the same type built from a
    message of its own: ``Caught DatasetError in DataLoader worker process 1.`` and the worker's
    whole traceback (a corrupt image was a 21-line error with 2 workers, one line with 0). The
    original message is the traceback's last line, after the exception's qualified name. A bug
    (any other exception) keeps torch's message and its traceback.
    """
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except UserError as err:
            raise type(err)(worker_message(str(err))) from None
        yield batch


def worker_message(text: str) -> str:
    """The original message of an error torch re-raised from a DataLoader worker (``text``
    itself when it is not one)."""
    if not text.startswith("Caught ") or "\nOriginal Traceback" not in text:
        return text
    last = text.rstrip().splitlines()[-1]
    name, sep, message = last.partition(": ")
    return message if sep and " " not in name else text


class _KeyedSampler(torch.utils.data.Sampler):
    """Yields ``(epoch, index, extra)`` so that each sample can be seeded by them, also inside
    DataLoader worker processes; ``extra`` is the same for every sample of a batch."""

    def __init__(self, sampler: ResumableSampler, batch_extra: Callable[[int, int], Any] | None):
        self.sampler = sampler
        self.batch_extra = batch_extra

    def __iter__(self):
        epoch, start, size = self.sampler.epoch, self.sampler.start_batch, self.sampler.batch_size
        for position, index in enumerate(self.sampler):
            batch = start + position // size
            extra = self.batch_extra(epoch, batch) if self.batch_extra else None
            yield (epoch, index, extra)

    def __len__(self) -> int:
        return len(self.sampler)
