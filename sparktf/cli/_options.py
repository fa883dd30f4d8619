"""The options of the commands, declared as tables: each command module lists its options with
:func:`option` (and the shorthands :func:`switch`, :func:`count_option`, :func:`output_option`,
:func:`one_of` for options that exclude each other); :func:`add_command` adds a subcommand with
its tables and :data:`COMMON_OPTIONS`, the Spark and output options every command has. Options
several commands share are declared here once (:data:`OVERWRITE_INTO`, :data:`SEED`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sparktf.cli._args import Formatter, Parser, positive_int


class Option(NamedTuple):
    """One option of a table: the arguments of ``add_argument``."""

    flags: tuple[str, ...]
    settings: dict[str, Any]


class OneOf(NamedTuple):
    """Options of a table that exclude each other (a mutually exclusive group)."""

    options: tuple[Option, ...]


#: A table of options: added in order, by :func:`add_options`.
Options = Sequence[Option | OneOf]


def option(*flags: str, **settings: Any) -> Option:
    """An option of a table, declared as ``add_argument(*flags, **settings)`` would add it."""
    return Option(flags, settings)


def switch(*flags: str, help: str) -> Option:
    """An on/off option: off unless given."""
    return option(*flags, action="store_true", help=help)


def count_option(flag: str, default: int | None, *, help: str, metavar: str = "N") -> Option:
    """An option taking a whole number >= 1 (:func:`positive_int`)."""
    return option(flag, type=positive_int, default=default, metavar=metavar, help=help)


def one_of(*options: Option) -> OneOf:
    """``options``, of which a command line may give one at the most."""
    return OneOf(options)


def output_option(default: str, text: str) -> Option:
    """``--output DIR``, the folder a command writes, with its default and help ``text``."""
    return option("--output", default=default, metavar="DIR", help=text)


#: ``--overwrite`` of the commands that write into an existing --output (see :func:`check_output`).
OVERWRITE_INTO = switch(
    "--overwrite",
    help="write into --output even if it holds files (files of the same name are replaced)",
)
#: ``--seed`` of the commands that split the data and train.
SEED = option(
    "--seed", type=int, default=42, metavar="N", help="seed of splits, folds and training"
)

#: The options every command has, in its last group, "Spark and output".
COMMON_OPTIONS: Options = (
    one_of(
        option(
            "--master",
            default=None,
            metavar="URL",
            help="Spark master URL, e.g. local[2] or spark://host:7077 (default: $SPARKTF_MASTER, "
            "else local[*])",
        ),
        option(
            "--remote",
            default=None,
            metavar="URL",
            help="Spark Connect URL instead of a master, e.g. sc://host:15002, or local[N] for a "
            "Connect server in this process (default: $SPARK_REMOTE)",
        ),
    ),
    option(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark setting, may be repeated (e.g. --conf spark.task.cpus=2)",
    ),
    one_of(
        switch("-q", "--quiet", help="no progress messages, only results and errors (Spark's too)"),
        switch(
            "-v",
            "--verbose",
            help="also the start-up notices of TensorFlow and the JVM, hidden by default",
        ),
    ),
    switch("--traceback", help="show the full Python traceback on errors"),
)


def add_options(
    parser: Any, options: Options, choices: Mapping[str, Sequence[str]] | None = None
) -> None:
    """Add the table ``options`` in order to ``parser`` (a parser or an argument group).
    ``choices`` gives the choices of the options it names by their first flag: for choices
    taken from modules imported only when the parser is built."""
    for entry in options:
        if isinstance(entry, OneOf):
            add_options(parser.add_mutually_exclusive_group(), entry.options, choices)
            continue
        flags, settings = entry
        if choices and flags[0] in choices:
            settings = {**settings, "choices": choices[flags[0]]}
        parser.add_argument(*flags, **settings)


def add_command(
    commands: Any,
    name: str,
    summary: str,
    description: str,
    options: Options,
    groups: Sequence[tuple[str, Options]] = (),
    choices: Mapping[str, Sequence[str]] | None = None,
) -> Parser:
    """Add the subcommand ``name`` to the sub-parsers ``commands`` and return its parser:
    ``summary`` is its line in ``sparktf --help``, ``description`` opens its own help. Its
    options, in the order of its usage line: the argument groups ``groups`` (title, options),
    then ``options``, then :data:`COMMON_OPTIONS`; ``choices`` as for :func:`add_options`."""
    parser = commands.add_parser(
        name, help=summary, description=description, formatter_class=Formatter
    )
    for title, group_options in groups:
        add_options(parser.add_argument_group(title), group_options, choices)
    add_options(parser, options, choices)
    add_options(parser.add_argument_group("Spark and output"), COMMON_OPTIONS)
    return parser
