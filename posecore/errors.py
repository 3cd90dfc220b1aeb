"""The errors a user can fix.

Every error a user can fix from the command line (a setting, a name, a file, an input) is a
:class:`UserError`: ``experiments.cli.fail_clearly`` reports exactly this family in one line with
exit status 2, so a ``ValueError`` or ``KeyError`` from a bug keeps its traceback. The family
lives here, on the ground floor (``posecore``), so that every package can raise it. Each subclass
also derives from the built-in type a caller would expect (``ValueError`` for a bad value,
``KeyError`` for a name not in a registry, ``FileNotFoundError`` for a missing file).
"""


class UserError(Exception):
    """An error the user can fix: the message names the input, the value and what would do."""


class SettingError(UserError, ValueError):
    """A setting or option outside what is accepted, e.g.
    ``trainer.lr=0: must be > 0``."""


class UnknownNameError(UserError, KeyError):
    """A name that no registry holds (a preset, a proxy, a keypoint layout, a shrinking path);
    the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingFileError(UserError, FileNotFoundError):
    """A file named by the user that does not exist."""
