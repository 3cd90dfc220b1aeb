"""A rerun resumes only the run it was started as: the settings that define it are compared first.

Rerunning a command in its run folder continues from ``checkpoints/last.pt``. If the command now
asks for another architecture, input size, batch size, data or starting weights, continuing
would mix two runs (or fail deep inside ``load_state_dict``); :func:`check_resume` compares the
settings stored in the checkpoint with the command's, before anything in the folder is written,
and refuses naming the first setting that differs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from posecore.errors import SettingError
from posenets.checkpoint import load_checkpoint

SETTINGS_KEY = "settings"  # the checkpoint entry that holds them
LABELS = "labels"  # inside the settings: what to show beside a value, never compared


class ResumeMismatch(SettingError):
    """A rerun in a run folder with settings other than the ones it was started with."""


def first_difference(
    saved: Mapping[str, Any], current: Mapping[str, Any], prefix: str = ""
) -> tuple[str, Any, Any] | None:
    """The first key of ``current`` (in its order; nested mappings as dotted keys) whose value
    differs from ``saved``'s, with both values. A key ``saved`` lacks is not compared: a
    checkpoint written before that setting was stored."""
    for key, value in current.items():
        if key not in saved:
            continue
        old, name = saved[key], f"{prefix}{key}"
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            found = first_difference(old, value, f"{name}.")
            if found is None and set(old) != set(value):
                found = (name, old, value)
            if found is not None:
                return found
        elif old != value:
            return name, old, value
    return None


def check_resume(
    checkpoint: str | Path, current: Mapping[str, Any], saved_from: Any = None
) -> None:
    """Refuse (:class:`ResumeMismatch`) a resume from ``checkpoint`` whose stored settings differ
    from ``current``; nothing happens when the checkpoint does not exist (a fresh run).
    ``current[LABELS]`` (not compared) gives the words shown beside a setting's value, e.g. the
    model name beside an architecture hash. ``saved_from(state)`` gives the settings of a
    checkpoint that stored none (an older one)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        return
    state = load_checkpoint(checkpoint)
    saved = state.get(SETTINGS_KEY)
    if saved is None:
        saved = saved_from(state) if saved_from else {}
    compared = {k: v for k, v in current.items() if k != LABELS}
    found = first_difference({k: v for k, v in saved.items() if k != LABELS}, compared)
    if found is None:
        return
    key, old, new = found
    top = key.split(".")[0]
    old_label = saved.get(LABELS, {}).get(top)
    new_label = current.get(LABELS, {}).get(top)
    raise ResumeMismatch(
        f"{checkpoint} belongs to a run with {key} {_text(old, old_label)}, this command has "
        f"{_text(new, new_label)}: resuming would mix two runs; rerun with the original "
        "settings, or give another run_dir="
    )


def _text(value: Any, label: str | None) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    text = text if len(text) <= 120 else text[:117] + "..."
    return f"{text} ({label})" if label else text
