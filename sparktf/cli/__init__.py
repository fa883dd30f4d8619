"""The ``sparktf`` command.

Subcommands, one module each:

* ``sparktf demo`` (:mod:`sparktf.cli.demo`): the whole story on the bundled digits: tune
  TFClassifier with a CrossValidator, print the report, save the sensitivity plot and the best
  model, then label a few digit images with it through TFGraphTransformer.
* ``sparktf tune`` (:mod:`sparktf.cli.tune`): grid or random search of TFClassifier on digits,
  MNIST IDX files or a Parquet dataset, with a CrossValidator or a TrainValidationSplit.
* ``sparktf label`` (:mod:`sparktf.cli.label`): label a folder or glob of images (or a Parquet
  file of image bytes) with a trained model and write the top-K labels per image.

Errors a user can fix (bad arguments, a missing path, no Java) are printed as one message, without
a traceback: exit code 2 for usage errors, 1 for errors while running. ``--traceback`` shows the
full Python traceback instead.

Importing this package imports neither TensorFlow nor Spark: each command imports what it needs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import sparktf
from sparktf._pools import thread_pools_closed
from sparktf.cli import demo, label, tune
from sparktf.cli._args import (
    Formatter,
    Parser,
    float_list,
    fraction,
    image_size,
    int_list,
    layer_lists,
    positive_int,
    shape,
)
from sparktf.cli._console import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Console,
    UsageError,
    configure_logging,
    error_message,
)
from sparktf.cli.demo import digit_image_model, write_digit_images
from sparktf.cli.label import read_images

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "build_parser",
    "digit_image_model",
    "float_list",
    "fraction",
    "image_size",
    "int_list",
    "layer_lists",
    "main",
    "positive_int",
    "read_images",
    "shape",
    "write_digit_images",
]

#: The subcommands in the order ``sparktf --help`` lists them: each module adds its parser and
#: runs the command.
_COMMANDS = {"demo": demo, "tune": tune, "label": label}


def build_parser() -> Parser:
    """The ``sparktf`` argument parser (all subcommands)."""
    parser = Parser(
        prog="sparktf",
        description="TensorFlow in Spark ML Pipelines: distributed hyperparameter tuning and "
        "batched model inference.",
        epilog="Run 'sparktf COMMAND --help' for the options of a command.",
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"sparktf {sparktf.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMANDS.values():
        module.add_parser(commands)
    parser.commands = commands.choices
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sparktf`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit
    code."""
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            # argparse reports a subcommand's unknown options from the top-level parser; report
            # them from the subcommand's, with its name and its help
            parser.commands.get(args.command, parser).error(
                f"unrecognized arguments: {' '.join(extras)}"
            )
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    configure_logging(args.quiet, args.verbose)
    with thread_pools_closed():  # the pools of pyspark's validators this command ran
        return _run(args, Console(args.quiet))


def _run(args: argparse.Namespace, console: Console) -> int:
    """Run the parsed command; its errors become a message and an exit code."""
    prog = f"sparktf {args.command}"
    try:
        return _COMMANDS[args.command].run(args, console)
    except UsageError as exc:
        if args.traceback:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.traceback:
            raise
        print(f"{prog}: error: {error_message(exc)}", file=sys.stderr)
        if type(exc).__name__ != "JavaNotFoundError":
            print("(run again with --traceback for details)", file=sys.stderr)
        return EXIT_ERROR
