"""Resumable records: one JSON object a line, appended as each piece of work finishes.

Long measurements (a ground-truth table, proxy scores over it) are interrupted and resumed; a
line is written only when its work is done, so a rerun reads what is there and does the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from pathlib import Path

from posecore.errors import SettingError


class JsonlRecords:
    """The records of ``path`` by ``key(record)``; ``add`` appends one and keeps it."""

    def __init__(self, path: str | Path, key: Callable[[dict], Hashable]):
        self.path = Path(path)
        self.key = key
        self.done: dict[Hashable, dict] = {}
        if self.path.exists():
            for number, line in enumerate(self.path.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise SettingError(
                        f"{self.path}:{number} is not a JSON record ({err.msg}); a run killed "
                        "while writing leaves a partial last line: delete that line and rerun"
                    ) from None
                self.done[key(record)] = record

    def add(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        self.done[self.key(record)] = record
