"""What a value in a COCO-format keypoint file must be, for every reader of such files.

The training loader (``bottomup.datasets.KeypointDataset``) and the scoring checks
(``evaluators.coco_inputs``) read the same files; a NaN keypoint the scorer refused used to be
loaded for training, made a NaN target and was blamed on the learning rate. Both ask here, and
each wraps the answer in its own error with its own prefix (the file, the annotation).
"""

from __future__ import annotations

import math


def is_id(value: object) -> bool:
    """An integer id, as COCO's files have them (``True`` is not one, nor ``"3"`` or ``3.0``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite int or float; ``True`` / ``False`` are not numbers here, though Python says so."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def numbers_problem(field: str, values: object, count: int | None = None) -> str | None:
    """Why ``values`` (the value of ``field``) is not a list of ``count`` (None: any number of)
    finite numbers, naming the first bad element; None when it is one."""
    if not isinstance(values, list) or (count is not None and len(values) != count):
        return f"{field} must be a list of {count} numbers, not {values!r}"
    for j, value in enumerate(values):
        if not is_number(value):
            return f"{field}[{j}]={value!r}: must be a finite number"
    return None
