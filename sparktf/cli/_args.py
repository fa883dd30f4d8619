"""The command line's building blocks: argument types, the parser and its help formatter, and the
checks of paths and settings given on the command line (the options themselves are declared in
:mod:`sparktf.cli._options`).

Every command checks its command line in three steps, and reports the first problem found:

1. the syntax of every argument: argparse's types and choices, then
   :func:`check_spark_options` and the command's own rules between options, without looking at
   any path (so a malformed ``--conf`` is reported whatever ``--output`` holds);
2. the paths and folders: inputs that must exist (:func:`require_path`), the state of
   ``--output`` (:func:`check_output`);
3. Spark: the master is reached and the session started (:func:`start_spark`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import textwrap
from collections.abc import Iterator, Sequence
from typing import Any

from sparktf.cli._console import EXIT_USAGE, Console, UsageError

# -- argument types ----------------------------------------------------------------------------


def _int_list(text: str, minimum: int = 1) -> list[int]:
    text = text.strip()
    if text.lower() in ("", "none", "[]"):
        return []
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if any(v < minimum for v in values):
        raise argparse.ArgumentTypeError(f"every value must be >= {minimum}, got {text!r}")
    return values


def layer_lists(text: str) -> list[list[int]]:
    """``"64;128,64"`` -> ``[[64], [128, 64]]``: alternatives separated by ``;``, the layer
    sizes of one alternative by ``,``; ``none`` (or an empty alternative) means no layer."""
    return [_int_list(part) for part in text.split(";")]


def float_list(text: str) -> list[float]:
    """``"0.001,0.01"`` -> ``[0.001, 0.01]`` (each value > 0)."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None
    if not values or any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected one or more numbers > 0, got {text!r}")
    return values


def int_list(text: str) -> list[int]:
    """``"5,10"`` -> ``[5, 10]`` (each value >= 1)."""
    values = _int_list(text)
    if not values:
        raise argparse.ArgumentTypeError(f"expected one or more integers >= 1, got {text!r}")
    return values


def shape(text: str) -> list[int]:
    """``"28,28,1"`` -> ``[28, 28, 1]``; ``none`` -> ``[]``."""
    return _int_list(text)


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {value:g}")
    return value


def layer_counts(text: str) -> list[int]:
    """``"0,-1"`` -> ``[0, -1]``: numbers of layers (each >= -1; -1 means all)."""
    values = _int_list(text, minimum=-1)
    if not values:
        raise argparse.ArgumentTypeError(f"expected one or more integers >= -1, got {text!r}")
    return values


def image_size(text: str) -> list[int]:
    """``"224,224"`` -> ``[224, 224]`` (height, width)."""
    values = _int_list(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected HEIGHT,WIDTH, got {text!r}")
    return values


# -- parser ------------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line naming the (sub)command, and a hint,
    instead of the whole usage block."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the parsers of the subcommands, by name (set by the top-level parser's builder)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help with one default per option: ``(default: X)`` is added unless the help text already
    states the default, or there is none to state (None, an empty list, an off flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default:" in text
            or "%(default)" in text
            or action.required
            or default is argparse.SUPPRESS
            or default is None
            or default is False
            or default == []
            or default == ""
            or not (action.option_strings or action.nargs in ("?", "*"))
        ):
            return action.help
        return f"{text} (default: %(default)s)"

    def _split_lines(self, text: str, width: int) -> list[str]:
        # keep 'sparktf-tune-output' and '--image-col' whole
        return textwrap.wrap(
            self._whitespace_matcher.sub(" ", text).strip(), width, break_on_hyphens=False
        )


def parse_conf(items: Sequence[str]) -> dict[str, str]:
    conf = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--conf expects KEY=VALUE, got {item!r}")
        conf[key.strip()] = value.strip()
    return conf


def check_master_url(master: str) -> None:
    """Refuse a ``--master`` Spark would not understand, without reaching it (that is
    :func:`start_spark`'s step)."""
    from sparktf.session import _MASTER_PATTERNS, check_master

    if any(re.fullmatch(pattern, master) for pattern in _MASTER_PATTERNS):
        return
    try:
        check_master(master)  # raises the error naming the forms a master URL takes
    except ValueError as exc:
        raise UsageError(f"--master: {exc}") from None


def check_spark_options(args: argparse.Namespace) -> None:
    """The syntax of the options every command has: ``--conf KEY=VALUE`` and the form of
    ``--master``. The first step of every command, before any path or folder is looked at."""
    parse_conf(args.conf)
    if args.master:
        check_master_url(args.master)


def start_spark(args: argparse.Namespace, console: Console) -> Any:
    from sparktf.session import get_spark

    conf = parse_conf(args.conf)
    if args.remote:
        console.step(f"Starting Spark (Spark Connect {args.remote})")
    else:
        console.step("Starting Spark" + (f" ({args.master})" if args.master else ""))
    if args.master:
        from sparktf.session import check_master

        try:
            check_master(args.master)
        except ValueError as exc:
            raise UsageError(f"--master: {exc}") from None
    return get_spark(
        master=args.master,
        remote=args.remote,
        app_name=f"sparktf {args.command}",
        conf=conf,
        log_level="ERROR" if args.quiet else "WARN",
        startup_logs=args.verbose,
    )


def require_path(path: str, option: str, kind: str = "path") -> None:
    """Refuse a local path that does not exist; a URL (``hdfs://``, ``s3a://``, ...) is left
    for Spark to read, which reports a missing one itself."""
    if "://" in path and not path.startswith("file://"):
        return
    path = path[len("file://") :] if path.startswith("file://") else path
    if kind == "dir" and not os.path.isdir(path):
        raise UsageError(f"{option}: folder not found: {path}")
    if kind == "path" and not os.path.exists(path):
        raise UsageError(f"{option}: no such file or folder: {path}")


def check_output(path: str, overwrite: bool) -> None:
    """Refuse an ``--output`` that is a file, or a folder holding files unless ``overwrite``."""
    if os.path.isfile(path):
        raise UsageError(f"--output {path} is a file, not a folder")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise UsageError(f"--output {path} is not empty (add --overwrite to write into it)")


@contextlib.contextmanager
def removed_on_failure(path: str) -> Iterator[None]:
    """On an error (or an interrupt) in the block, remove what it added to the folder ``path``:
    the folder itself if it did not exist before, else the entries it did not hold before."""
    existed = os.path.isdir(path)
    before = set(os.listdir(path)) if existed else set()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.isdir(path):
            for name in set(os.listdir(path)) - before:
                entry = os.path.join(path, name)
                if os.path.isdir(entry) and not os.path.islink(entry):
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.remove(entry)
        raise
