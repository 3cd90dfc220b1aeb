"""Moved to the ground floor: ``posecore.interrupts`` (issue 29).

Kept only for ``arch_search/admission.py``, whose import changes when the lead's work on it
lands; delete this file then. The names are the same objects, so a stop requested through
either module is seen by both.
"""

from posecore.interrupts import Interrupted, requested, stop_on_signals

__all__ = ["Interrupted", "requested", "stop_on_signals"]
