"""How every entry point ends when it does not finish: one line on stderr, never a traceback.

Errors a user can fix (a bad arch field, a missing dataset path, a corrupt checkpoint, an
infeasible budget) are one family, ``search_space.errors.UserError``, and already carry the field
and the fix in their message; a traceback would only bury it: exit status 2. A SIGINT / SIGTERM
honoured at a safe point (``training.interrupts``) says what was kept: exit status 128 + the
signal, as a shell reports it. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from omegaconf.errors import MissingMandatoryValue

from search_space.errors import UserError
from training.interrupts import Interrupted


@contextmanager
def fail_clearly(
    command: str,
    *,
    hint: Callable[[BaseException], str | None] = lambda err: None,
) -> Iterator[None]:
    """Turn a :class:`UserError` raised inside into ``<command> failed: <message>`` on stderr
    (plus ``hint(err)`` when it has one) and exit status 2; an interrupt into ``<command>
    interrupted: <what was kept>`` and exit status 130 (Ctrl-C) or 143 (SIGTERM). Only the
    ``UserError`` family: a built-in error stays a bug, with its traceback."""
    try:
        yield
    except Interrupted as err:
        print(f"{command} interrupted: {err}", file=sys.stderr)
        raise SystemExit(err.exit_status) from None
    except KeyboardInterrupt:  # a Ctrl-C where nothing waits for one, or a second one
        print(f"{command} interrupted: stopped at once (KeyboardInterrupt)", file=sys.stderr)
        raise SystemExit(130) from None
    except MissingMandatoryValue as err:  # a '???' setting of the config left unset
        print(
            f"{command} failed: {err.full_key} is required: add {err.full_key}=<value>",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    except UserError as err:
        print(f"{command} failed: {err}", file=sys.stderr)
        extra = hint(err)
        if extra:
            print(extra, file=sys.stderr)
        raise SystemExit(2) from None
