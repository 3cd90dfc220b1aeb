"""The ground floor: what every package of posearch shares, in the standard library only.

* ``errors``: the family of errors a user can fix (``UserError``, ``SettingError``, ...), which
  ``experiments.cli.fail_clearly`` reports in one line;
* ``interrupts``: a SIGINT / SIGTERM honoured at a safe point (after a step, between trials);
* ``records``: resumable JSONL records, one line per finished piece of work;
* ``folders``: output folders (posearch's marker, staged writes, a lock) and the run-folder check.

Nothing here imports another posearch package (``tests/test_layering.py``), so any of them may
import it; names are imported from their module (``from posecore.errors import SettingError``).
"""
