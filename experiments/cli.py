"""What every entry point does with a user's mistake: one line naming it, exit status 2.

Errors a user can fix (a bad arch field, a missing dataset path, a corrupt checkpoint, an
infeasible budget) already carry the field and the fix in their message; a traceback would only
bury it. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def fail_clearly(
    command: str,
    *errors: type[BaseException],
    hint: Callable[[BaseException], str | None] = lambda err: None,
) -> Iterator[None]:
    """Turn ``errors`` raised inside into ``<command> failed: <message>`` on stderr (plus
    ``hint(err)`` when it has one) and exit status 2."""
    try:
        yield
    except errors as err:
        print(f"{command} failed: {err}", file=sys.stderr)
        extra = hint(err)
        if extra:
            print(extra, file=sys.stderr)
        raise SystemExit(2) from None
