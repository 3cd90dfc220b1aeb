"""The one error type of the architecture language: a field of a config that cannot be built.

It is a :class:`posecore.errors.UserError` (reported in one line by ``experiments.cli``); the
generic errors (a setting, a name, a file) live on the ground floor, ``posecore.errors``.
"""

from posecore.errors import UserError

__all__ = ["ArchConfigError"]


class ArchConfigError(UserError, ValueError):
    """An architecture description that cannot be built.

    The message always starts with the dotted path of the offending field and its value, then says
    what would be accepted, e.g.
    ``stages[2].blocks[4].kernel=4: must be an odd size in {3, 5, 7, 9}``.
    """

    def __init__(self, path: str, value: object, expected: str):
        self.path = path
        self.value = value
        self.expected = expected
        super().__init__(f"{path}={value!r}: {expected}")
