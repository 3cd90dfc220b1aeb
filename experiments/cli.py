"""How every entry point ends when it does not finish: one line on stderr, never a traceback.

Errors a user can fix (a bad arch field, a missing dataset path, a corrupt checkpoint, an
infeasible budget) are one family, ``posecore.errors.UserError``, and already carry the field
and the fix in their message; a traceback would only bury it: exit status 2. A SIGINT / SIGTERM
honoured at a safe point (``posecore.interrupts``) says what was kept: exit status 128 + the
signal, as a shell reports it. Anything else is a bug and keeps its traceback.

Every entry point's ``--help`` is its module docstring (what it does, its main options, examples),
the config groups it composes and every setting with its value: its config's defaults list names
``override hydra/help: posearch`` (:func:`command_help`), instead of Hydra's generic page that
listed every group of ``conf/`` whether the command used it or not.

An entry point that writes a run folder names :class:`RunDirCheck` among its config's
``hydra.callbacks``: the folder is checked before Hydra makes it and before any data is generated
or anything trained, so a ``run_dir=`` that cannot be written fails in a second with one line.
"""

from __future__ import annotations

import ast
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hydra.core.config_store import ConfigStore
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from posecore.errors import SettingError, UserError
from posecore.folders import check_run_dir
from posecore.interrupts import Interrupted


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


def settings(cfg: Any, leave_out: tuple[str, ...] = ("overwrite", "progress")) -> dict:
    """The settings that define a command's output, for the marker of the folder it writes
    (``posecore.folders``): the resolved config (or its schema's dataclass) less the keys
    that change only how it runs."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)
    values = OmegaConf.to_container(node, resolve=True)
    return {k: v for k, v in values.items() if k not in leave_out}


def check_seed(value: int, key: str = "seed") -> int:
    """A seed every generator posearch seeds accepts (numpy and Optuna: 0 to 2**32 - 1); a
    negative one was a ValueError traceback from deep inside."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise SettingError(f"{key}={value}: must be an integer from 0 to 2**32 - 1")
    return value


class RunDirCheck(Callback):
    """Hydra callback (``hydra.callbacks.run_dir._target_: experiments.cli.RunDirCheck``):
    ``posecore.folders.check_run_dir`` on the config's ``key`` when the run starts, before Hydra
    makes its run folder (which fails with a traceback) and before the task runs; a failure is
    reported as ``<command> failed: ...``, exit status 2. An unset (null) ``key`` is not checked."""

    def __init__(self, key: str = "run_dir") -> None:
        self.key = key

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        path = config.get(self.key)
        if path is not None:
            with fail_clearly(config.hydra.job.name):
                check_run_dir(path, self.key)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """The run folder's ``<command>.log`` (``hydra/job_logging: posearch``) starts with the
        command that wrote it; it used to stay empty."""
        hydra = config.hydra
        logging.getLogger("posearch").info(
            "python -m experiments.%s %s", hydra.job.name, " ".join(hydra.overrides.task)
        )


CONF = Path(__file__).with_name("conf")


def command_help(command: str) -> str:
    """The ``--help`` page of ``python -m experiments.<command>``: its docstring (read from the
    source, not imported), the config groups its defaults list composes with their options, and
    Hydra's ``$CONFIG`` (every setting, as the overrides given leave it)."""
    source = Path(__file__).with_name(f"{command}.py")
    doc = ast.get_docstring(ast.parse(source.read_text())) or f"python -m experiments.{command}"
    lines = [doc.strip().replace("$", "$$"), ""]
    groups = _groups(command)
    if groups:
        lines.append("Config groups (group=option):")
        for group, default in groups.items():
            options = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
            chosen = str(default).replace("$", "$$")  # recipe: ${dataset}, not a placeholder
            lines.append(f"  {group}: {', '.join(options)} (default: {chosen})")
        lines.append("")
    lines += [
        "Settings (override any as key=value; `--cfg job` prints them resolved):",
        "$CONFIG",
        "Hydra's own options: --hydra-help",
    ]
    return "\n".join(lines)


def _groups(command: str) -> dict[str, str]:
    """``{group: default option}`` of the command's defaults list (Hydra's own groups left out)."""
    primary = CONF / f"{command}.yaml"
    if not primary.is_file():
        primary = CONF / command / f"{command}.yaml"  # score keeps its own folder
    defaults = (yaml.safe_load(primary.read_text()) or {}).get("defaults", [])
    return {
        group: option
        for entry in defaults
        if isinstance(entry, dict)
        for group, option in entry.items()
        if not group.startswith(("override", "hydra")) and (CONF / group).is_dir()
    }


def run_name(arch: str) -> str:
    """The run folder's name for ``arch`` (``conf/train.yaml``'s ``run_dir``): a preset's name,
    an architecture file's stem (its folder's name for a search export's ``arch.json``), never
    the file's whole path (``model=/a/b.json`` ran in ``outputs/train//a/b.json``)."""
    path = Path(str(arch))
    if path.suffix in (".json", ".yaml", ".yml"):
        return path.parent.name if path.stem == "arch" and path.parent.name else path.stem
    return path.name or str(arch)


for _name, _resolver in (("posearch_help", command_help), ("posearch_run_name", run_name)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _resolver)
ConfigStore.instance().store(
    group="hydra/help",
    name="posearch",
    node={"app_name": "${hydra.job.name}", "template": "${posearch_help:${hydra.job.name}}"},
)
# Library INFO lines go to the run folder's <command>.log, never into a result table on stdout;
# warnings and errors still reach the console (stderr).
ConfigStore.instance().store(
    group="hydra/job_logging",
    name="posearch",
    node={
        "version": 1,
        "formatters": {
            "simple": {"format": "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"}
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "simple",
                "stream": "ext://sys.stderr",
                "level": "WARNING",
            },
            "file": {
                "class": "logging.FileHandler",
                "formatter": "simple",
                "filename": "${hydra.runtime.output_dir}/${hydra.job.name}.log",
            },
        },
        "root": {"level": "INFO", "handlers": ["console", "file"]},
        "disable_existing_loggers": False,
    },
)
