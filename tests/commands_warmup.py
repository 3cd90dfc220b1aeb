"""Imported by the forkserver of ``commands`` (and nowhere else): warms it up on import."""

from commands import warm_up

warm_up()
