"""The ``sparktf`` command.

Subcommands:

* ``sparktf demo``: the whole story on the bundled digits: tune TFClassifier with a
  CrossValidator, print the report, save the sensitivity plot and the best model, then label a few
  digit images with it through TFGraphTransformer.
* ``sparktf tune``: grid or random search of TFClassifier on digits, MNIST IDX files or a Parquet
  dataset, with a CrossValidator or a TrainValidationSplit.
* ``sparktf label``: label a folder or glob of images (or a Parquet file of image bytes) with a
  trained model and write the top-K labels per image.

Errors a user can fix (bad arguments, a missing path, no Java) are printed as one message, without
a traceback: exit code 2 for usage errors, 1 for errors while running. ``--traceback`` shows the
full Python traceback instead.

Importing this module imports neither TensorFlow nor Spark: each command imports what it needs.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sparktf

__all__ = ["UsageError", "build_parser", "main"]

#: Exit codes of the command.
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp")


class UsageError(Exception):
    """A problem with the command line (bad value, missing path): exit code 2."""


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


def image_size(text: str) -> list[int]:
    """``"224,224"`` -> ``[224, 224]`` (height, width)."""
    values = _int_list(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected HEIGHT,WIDTH, got {text!r}")
    return values


# -- parser ------------------------------------------------------------------------------------


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Spark and output")
    group.add_argument(
        "--master",
        default=None,
        help="Spark master URL, e.g. local[2] or spark://host:7077 (default: $SPARKTF_MASTER, "
        "else local[*])",
    )
    group.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark setting, may be repeated (e.g. --conf spark.task.cpus=2)",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", help="no progress messages, only results and errors"
    )
    group.add_argument(
        "--traceback", action="store_true", help="show the full Python traceback on errors"
    )


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    search = parser.add_argument_group("search")
    search.add_argument("--search", choices=("grid", "random"), default="grid", help="search kind")
    search.add_argument(
        "--samples",
        type=positive_int,
        default=8,
        help="random search: number of sampled settings (the learning rate is drawn "
        "log-uniformly between the smallest and largest --learning-rates, the other Params from "
        "their listed values)",
    )
    search.add_argument("--seed", type=int, default=42, help="seed of splits, folds and training")
    search.add_argument(
        "--validator",
        choices=("cv", "tvs"),
        default="cv",
        help="cv: CrossValidator; tvs: TrainValidationSplit",
    )
    search.add_argument("--folds", type=positive_int, default=3, help="CrossValidator folds (>= 2)")
    search.add_argument(
        "--train-ratio",
        type=fraction,
        default=0.75,
        help="TrainValidationSplit: fraction of the rows used for training",
    )
    search.add_argument(
        "--parallelism",
        type=positive_int,
        default=4,
        help="models scored on the validation data at once (the trainings of a fold always run "
        "as one Spark job, one task per setting)",
    )
    values = parser.add_argument_group("searched values (comma-separated; layers: ';' between)")
    values.add_argument(
        "--hidden-layers",
        type=layer_lists,
        default=None,
        metavar="LAYERS",
        help="hidden dense layer sizes to try, e.g. '64;128,64' tries [64] and [128, 64] "
        "(default: '32;64')",
    )
    values.add_argument(
        "--learning-rates",
        type=float_list,
        default=None,
        metavar="RATES",
        help="learning rates to try (default: '0.001,0.01')",
    )
    values.add_argument(
        "--epochs",
        type=int_list,
        default=None,
        metavar="N",
        help="numbers of epochs to try (default: 10)",
    )
    values.add_argument(
        "--batch-sizes",
        type=int_list,
        default=None,
        metavar="N",
        help="batch sizes to try (default: 32)",
    )
    values.add_argument(
        "--conv-layers",
        type=layer_lists,
        default=None,
        metavar="LAYERS",
        help="convolution filters to try, e.g. '32;32,64' (needs --input-shape; default: none)",
    )
    values.add_argument(
        "--input-shape",
        type=shape,
        default=None,
        metavar="SHAPE",
        help="shape each feature vector is reshaped to, e.g. '28,28,1' (default: flat; "
        "28,28,1 for --mnist with --conv-layers, 8,8,1 for digits with --conv-layers)",
    )
    values.add_argument(
        "--dropout", type=fraction, default=0.1, help="dropout after each hidden layer"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``sparktf`` argument parser (all subcommands)."""
    parser = argparse.ArgumentParser(
        prog="sparktf",
        description="TensorFlow in Spark ML Pipelines: distributed hyperparameter tuning and "
        "batched model inference.",
        epilog="Run 'sparktf COMMAND --help' for the options of a command.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"sparktf {sparktf.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="tune on the bundled digits, report, plot, and label images with the best model",
        description="The whole story on the bundled scikit-learn digits (no download): a "
        "CrossValidator tunes TFClassifier over hidden layers x learning rate as parallel Spark "
        "tasks; the report table, the test accuracy of the best model and a sensitivity plot "
        "follow; then digit images are written as PNG files and labelled with the best model "
        "through TFGraphTransformer.",
        formatter_class=_Formatter,
    )
    demo.add_argument(
        "--output", default="sparktf-demo-output", help="folder receiving every result"
    )
    demo.add_argument(
        "--quick", action="store_true", help="a tiny run (2 x 2 grid, 2 folds, 3 epochs)"
    )
    demo.add_argument(
        "--images", type=positive_int, default=8, help="number of test digits written and labelled"
    )
    demo.add_argument("--seed", type=int, default=42, help="seed of splits, folds and training")
    _common(demo)

    tune = commands.add_parser(
        "tune",
        help="hyperparameter search of TFClassifier (grid or random, cross-validated)",
        description="Grid or random search of TFClassifier with a CrossValidator or a "
        "TrainValidationSplit; every setting of a fold trains as its own Spark task. Writes "
        "report.csv (also printed), sensitivity.png, best_model/ (a TFClassificationModel saved "
        "with pyspark.ml persistence) and best_model.keras (the Keras network alone) to --output.",
        formatter_class=_Formatter,
    )
    data = tune.add_argument_group("data (default: the bundled scikit-learn digits)")
    source = data.add_mutually_exclusive_group()
    source.add_argument(
        "--mnist",
        metavar="DIR",
        help="folder with the four MNIST IDX files (gzipped or not); the t10k files are the test "
        "set",
    )
    source.add_argument(
        "--parquet", metavar="PATH", help="Parquet dataset with a features and a label column"
    )
    data.add_argument("--features-col", default="features", help="features column (--parquet)")
    data.add_argument("--label-col", default="label", help="label column (--parquet)")
    data.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="use at most this many training rows (a random sample), for a fast first run",
    )
    data.add_argument(
        "--test-fraction",
        type=fraction,
        default=0.2,
        help="fraction held out for the final test accuracy (not with --mnist; 0: none)",
    )
    _add_search_options(tune)
    tune.add_argument(
        "--quick", action="store_true", help="small defaults: 2 folds, 3 epochs, 2 x 2 grid"
    )
    tune.add_argument("--output", default="sparktf-tune-output", help="folder receiving results")
    _common(tune)

    label = commands.add_parser(
        "label",
        help="label images with a trained model; write the top-K labels per image",
        description="Label images with a TensorFlow model through TFGraphTransformer: the model "
        "is read once on the driver, broadcast, and applied in batches. IMAGES is a folder, a "
        "glob (quote it: 'photos/*.jpg') or, with --image-col, a Parquet dataset of image bytes.",
        formatter_class=_Formatter,
    )
    label.add_argument("images", help="folder, glob or (with --image-col) Parquet path")
    label.add_argument(
        "--model",
        required=True,
        help="SavedModel folder, Keras file (.keras, .h5) or frozen GraphDef (.pb)",
    )
    label.add_argument(
        "--model-format",
        choices=("auto", "graphdef", "savedmodel", "keras"),
        default="auto",
        help="model format; auto detects it from the path",
    )
    label.add_argument("--labels", metavar="FILE", help="text file with one class name per line")
    label.add_argument("--top-k", type=positive_int, default=5, help="labels kept per image")
    label.add_argument("--input-tensor", help="GraphDef: input tensor fed the encoded images")
    label.add_argument("--output-tensor", help="GraphDef: output tensor holding the scores")
    label.add_argument("--signature", default="serving_default", help="SavedModel signature")
    label.add_argument(
        "--image-size",
        type=image_size,
        default=None,
        metavar="H,W",
        help="size images are resized to (default: the model input's size)",
    )
    label.add_argument(
        "--image-scaling",
        choices=("none", "unit", "signed"),
        default="unit",
        help="pixel scaling the model expects: none (0..255), unit ([0, 1]), signed ([-1, 1])",
    )
    label.add_argument(
        "--channel-order", choices=("rgb", "bgr"), default="rgb", help="channel order"
    )
    label.add_argument("--batch-size", type=positive_int, default=64, help="images per TF call")
    label.add_argument(
        "--image-col",
        default=None,
        help="read IMAGES as Parquet and take the encoded image bytes from this column",
    )
    label.add_argument(
        "--path-col",
        default="path",
        help="column naming each image in the output (with --image-col; ignored if absent)",
    )
    label.add_argument(
        "--recursive", action="store_true", help="also read images in sub-folders of a folder"
    )
    label.add_argument(
        "--skip-invalid",
        action="store_true",
        help="drop images that cannot be decoded instead of failing",
    )
    label.add_argument("--output", default="sparktf-labels", help="output folder (Parquet or CSV)")
    label.add_argument(
        "--format",
        choices=("parquet", "csv"),
        default="parquet",
        help="output format; csv flattens the top-K labels to 'label:score;...' strings",
    )
    label.add_argument(
        "--overwrite", action="store_true", help="replace --output if it already exists"
    )
    label.add_argument("--show", type=int, default=10, help="rows of the sample printed")
    _common(label)
    return parser


# -- running -----------------------------------------------------------------------------------


class _Console:
    """Progress (stderr, through logging) and results (stdout)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def step(self, text: str) -> None:
        if not self.quiet:
            logging.getLogger("sparktf.cli").info(text)

    @staticmethod
    def out(text: str = "") -> None:
        print(text, flush=True)


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is at the time of each record."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _configure_logging(quiet: bool) -> None:
    """INFO for sparktf's loggers on stderr (WARNING with --quiet); others stay quiet."""
    logger = logging.getLogger("sparktf")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    for name in ("py4j", "py4j.clientserver", "py4j.java_gateway"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parse_conf(items: Sequence[str]) -> dict[str, str]:
    conf = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--conf expects KEY=VALUE, got {item!r}")
        conf[key.strip()] = value.strip()
    return conf


def _spark(args: argparse.Namespace, console: _Console) -> Any:
    from sparktf.session import get_spark

    conf = _parse_conf(args.conf)
    console.step("Starting Spark" + (f" ({args.master})" if args.master else ""))
    return get_spark(master=args.master, app_name=f"sparktf {args.command}", conf=conf)


def _format_cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_cell(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "tolist") and not isinstance(value, str):
        return _format_cell(value.tolist())
    return str(value)


def report_table(report: Any) -> Any:
    """The tuning report with list values as text, ready for CSV or printing."""
    table = report.copy()
    for column in table.columns:
        if table[column].map(lambda v: isinstance(v, (list, tuple))).any():
            table[column] = table[column].map(_format_cell)
    return table


def _print_report(console: _Console, report: Any) -> None:
    table = report_table(report)
    columns = [*report.attrs.get("params", []), "mean", "std", "seconds", "rank", "best"]
    if table["failure"].astype(str).str.len().gt(0).any():
        columns.append("failure")
    shown = table[[c for c in columns if c in table.columns]].sort_values("rank")
    metric = report.attrs.get("metric", "metric")
    console.out(f"Tuning report ({metric}, best first):")
    console.out(
        shown.to_string(
            index=False,
            formatters={
                "mean": "{:.4f}".format,
                "std": "{:.4f}".format,
                "seconds": "{:.1f}".format,
            },
        )
    )


@dataclass
class SearchSpace:
    """The searched values of a tuning run (each a list of alternatives)."""

    hiddenLayers: list[list[int]] = field(default_factory=lambda: [[32], [64]])
    learningRate: list[float] = field(default_factory=lambda: [0.001, 0.01])
    epochs: list[int] = field(default_factory=lambda: [10])
    batchSize: list[int] = field(default_factory=lambda: [32])
    convLayers: list[list[int]] = field(default_factory=lambda: [[]])


def _param_maps(clf: Any, space: SearchSpace, search: str, samples: int, seed: int) -> list:
    from pyspark.ml.tuning import ParamGridBuilder

    from sparktf.tuning import ParamRandomBuilder

    axes = [
        (clf.hiddenLayers, space.hiddenLayers),
        (clf.convLayers, space.convLayers),
        (clf.epochs, space.epochs),
        (clf.batchSize, space.batchSize),
    ]
    if search == "grid":
        grid = ParamGridBuilder()
        for param, values in [*axes, (clf.learningRate, space.learningRate)]:
            grid.addGrid(param, values)
        return grid.build()
    builder = ParamRandomBuilder()
    rates = space.learningRate
    if min(rates) < max(rates):
        builder.addLogUniform(clf.learningRate, min(rates), max(rates))
    else:
        builder.addChoice(clf.learningRate, rates[:1])
    for param, values in axes:
        builder.addChoice(param, values)
    return builder.build(samples, seed=seed)


def _plot_axes(report: Any) -> tuple[str, str | None] | None:
    """Which Params the sensitivity plot shows: x (numeric) and one line per value of another."""
    params = list(report.attrs.get("params", []))

    def varies(name: str) -> bool:
        return report[name].map(_format_cell).nunique() > 1

    numeric = [p for p in ("learningRate", "epochs", "batchSize") if p in params]
    if not numeric:
        return None
    x = next((p for p in numeric if varies(p)), numeric[0])
    line = next((p for p in params if p != x and varies(p)), None)
    return x, line


@dataclass
class TuningResult:
    """What :func:`run_tuning` produced."""

    report: Any
    best_model: Any
    test_accuracy: float | None
    plot_path: str | None
    seconds: float


def run_tuning(
    train: Any,
    test: Any | None,
    space: SearchSpace,
    output: str,
    console: _Console,
    *,
    search: str = "grid",
    samples: int = 8,
    seed: int = 42,
    validator: str = "cv",
    folds: int = 3,
    train_ratio: float = 0.75,
    dropout: float = 0.1,
    input_shape: Sequence[int] = (),
    features_col: str = "features",
    label_col: str = "label",
    parallelism: int = 4,
) -> TuningResult:
    """Search TFClassifier settings on ``train``, score the best on ``test``, write results.

    Writes ``report.csv``, ``sensitivity.png``, ``best_model/`` and ``best_model.keras`` into
    ``output`` and prints the report table. Every fold trains all settings as one Spark job;
    ``parallelism`` is how many of the fitted models the validator scores at once.
    """
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, TrainValidationSplit

    from sparktf.classification import TFClassifier
    from sparktf.tuning import plot_sensitivity, tuning_report

    os.makedirs(output, exist_ok=True)
    clf = TFClassifier(
        featuresCol=features_col,
        labelCol=label_col,
        dropout=dropout,
        inputShape=list(input_shape),
        seed=seed,
    )
    maps = _param_maps(clf, space, search, samples, seed)
    evaluator = MulticlassClassificationEvaluator(
        labelCol=label_col, predictionCol="prediction", metricName="accuracy"
    )
    if validator == "cv":
        if folds < 2:
            raise UsageError(f"--folds must be >= 2 for a CrossValidator, got {folds}")
        tuner: Any = CrossValidator(
            estimator=clf,
            estimatorParamMaps=maps,
            evaluator=evaluator,
            numFolds=folds,
            seed=seed,
            parallelism=parallelism,
        )
        plan = f"{len(maps)} settings x {folds} folds = {len(maps) * folds} trainings"
    else:
        tuner = TrainValidationSplit(
            estimator=clf,
            estimatorParamMaps=maps,
            evaluator=evaluator,
            trainRatio=train_ratio,
            seed=seed,
            parallelism=parallelism,
        )
        plan = f"{len(maps)} settings on one train/validation split"
    console.step(f"Tuning TFClassifier ({search} search): {plan}, then one refit of the best")
    start = time.time()
    tuned = tuner.fit(train)
    seconds = time.time() - start
    console.step(f"Tuning finished in {seconds:.1f}s")

    report = tuning_report(tuned, clf)
    report_table(report).to_csv(os.path.join(output, "report.csv"), index=False)
    _print_report(console, report)

    plot_path = None
    axes = _plot_axes(report)
    if axes is not None:
        x, line = axes
        plot_path = plot_sensitivity(
            report,
            x=x,
            line=line,
            path=os.path.join(output, "sensitivity.png"),
            title=f"validation {report.attrs.get('metric', 'metric')} against {x}",
        )

    best = tuned.bestModel
    accuracy = None
    if test is not None:
        accuracy = float(evaluator.evaluate(best.transform(test)))
    best_dir = os.path.join(output, "best_model")
    best.write().overwrite().save(best_dir)
    with open(os.path.join(output, "best_model.keras"), "wb") as handle:
        handle.write(best.modelBytes)

    chosen = report[report["best"]].iloc[0]
    settings = ", ".join(
        f"{name}={_format_cell(chosen[name])}" for name in report.attrs.get("params", [])
    )
    console.out("")
    console.out(f"Best setting: {settings} (validation accuracy {chosen['mean']:.4f})")
    if accuracy is not None:
        console.out(f"Test accuracy of the best model: {accuracy:.4f}")
    console.out(f"Report:      {os.path.join(output, 'report.csv')}")
    if plot_path:
        console.out(f"Plot:        {plot_path}")
    console.out(f"Best model:  {best_dir} (TFClassificationModel.load)")
    console.out(f"Keras file:  {os.path.join(output, 'best_model.keras')}")
    return TuningResult(report, best, accuracy, plot_path, seconds)


def _require_path(path: str, option: str, kind: str = "path") -> None:
    if kind == "dir" and not os.path.isdir(path):
        raise UsageError(f"{option}: folder not found: {path}")
    if kind == "path" and not os.path.exists(path):
        raise UsageError(f"{option}: no such file or folder: {path}")


def _tune_space(args: argparse.Namespace) -> SearchSpace:
    space = SearchSpace()
    if args.quick:
        space = SearchSpace(hiddenLayers=[[16], [32]], learningRate=[0.003, 0.03], epochs=[3])
    for name, value in (
        ("hiddenLayers", args.hidden_layers),
        ("learningRate", args.learning_rates),
        ("epochs", args.epochs),
        ("batchSize", args.batch_sizes),
        ("convLayers", args.conv_layers),
    ):
        if value is not None:
            setattr(space, name, value)
    return space


def cmd_tune(args: argparse.Namespace, console: _Console) -> int:
    """``sparktf tune``."""
    if args.mnist:
        _require_path(args.mnist, "--mnist", "dir")
    if args.parquet:
        _require_path(args.parquet, "--parquet")
    space = _tune_space(args)
    folds = 2 if args.quick and args.folds == 3 else args.folds
    if args.validator == "cv" and folds < 2:
        raise UsageError(f"--folds must be >= 2 for a CrossValidator, got {folds}")
    input_shape = args.input_shape
    if input_shape is None:
        uses_conv = any(space.convLayers)
        input_shape = ([28, 28, 1] if args.mnist else [8, 8, 1]) if uses_conv else []
        if uses_conv and args.parquet:
            raise UsageError("--conv-layers on --parquet data needs --input-shape")

    spark = _spark(args, console)
    from sparktf.datasets import load_digits, load_mnist

    features, label = "features", "label"
    test = None
    if args.mnist:
        console.step(f"Reading MNIST from {args.mnist}")
        train = load_mnist(spark, args.mnist, "train")
        test = load_mnist(spark, args.mnist, "test")
    elif args.parquet:
        console.step(f"Reading {args.parquet}")
        train = spark.read.parquet(args.parquet)
        features, label = args.features_col, args.label_col
        missing = [c for c in (features, label) if c not in train.columns]
        if missing:
            raise UsageError(
                f"--parquet {args.parquet}: column(s) {missing} not found; the columns are "
                f"{train.columns} (choose with --features-col / --label-col)"
            )
    else:
        console.step("Loading the bundled scikit-learn digits (1,797 images of 8x8 pixels)")
        train = load_digits(spark)
    if args.limit:
        count = train.count()
        if args.limit < count:
            train = train.sample(fraction=min(1.0, 1.1 * args.limit / count), seed=args.seed)
            train = train.limit(args.limit)
    if test is None and args.test_fraction > 0:
        train, test = train.randomSplit([1 - args.test_fraction, args.test_fraction], args.seed)
    train = train.cache()
    console.step(f"Training rows: {train.count()}")
    run_tuning(
        train,
        test,
        space,
        args.output,
        console,
        search=args.search,
        samples=args.samples,
        seed=args.seed,
        validator=args.validator,
        folds=folds,
        train_ratio=args.train_ratio,
        dropout=args.dropout,
        input_shape=input_shape,
        features_col=features,
        label_col=label,
        parallelism=args.parallelism,
    )
    return EXIT_OK


# -- label -------------------------------------------------------------------------------------


def _is_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def read_images(spark: Any, path: str, recursive: bool = False) -> Any:
    """A ``binaryFile`` DataFrame (path, modificationTime, length, content) of the images at
    ``path``: a folder (files with an image extension) or a glob."""
    reader = spark.read.format("binaryFile")
    if _is_glob(path):
        if not glob.glob(path) and "://" not in path:
            raise UsageError(f"no file matches {path}")
        return reader.load(path)
    if not os.path.exists(path) and "://" not in path:
        raise UsageError(f"no such file or folder: {path}")
    if os.path.isdir(path) or "://" in path:
        patterns = ",".join(e for ext in _IMAGE_EXTENSIONS for e in (ext, ext.upper()))
        reader = reader.option("pathGlobFilter", "*.{" + patterns + "}")
        if recursive:
            reader = reader.option("recursiveFileLookup", "true")
    return reader.load(path)


def _top_k_text(entries: Any) -> str:
    return ";".join(f"{e['label']}:{e['score']:.4f}" for e in entries or [])


def _top_k_pretty(entries: Any, n: int = 3) -> str:
    return ", ".join(f"{e['label']} ({e['score']:.3f})" for e in (entries or [])[:n])


def cmd_label(args: argparse.Namespace, console: _Console) -> int:
    """``sparktf label``."""
    _require_path(args.model, "--model")
    if args.labels:
        _require_path(args.labels, "--labels")
    graphdef = args.model_format == "graphdef" or (
        args.model_format == "auto" and os.path.isfile(args.model) and args.model.endswith(".pb")
    )
    if graphdef and not (args.input_tensor and args.output_tensor):
        raise UsageError("a frozen GraphDef needs --input-tensor and --output-tensor")
    if os.path.exists(args.output) and not args.overwrite:
        raise UsageError(f"--output {args.output} already exists (add --overwrite to replace it)")
    if not args.labels:
        raise UsageError("--labels FILE is required to write top-K labels")

    spark = _spark(args, console)
    if args.image_col:
        if "://" not in args.images:
            _require_path(args.images, "IMAGES")
        df = spark.read.parquet(args.images)
        if args.image_col not in df.columns:
            raise UsageError(
                f"--image-col {args.image_col!r} is not a column of {args.images}; the columns "
                f"are {df.columns}"
            )
        image_col = args.image_col
        path_col = args.path_col if args.path_col in df.columns else None
    else:
        df = read_images(spark, args.images, args.recursive)
        image_col, path_col = "content", "path"
    count = df.count()
    if count == 0:
        raise UsageError(f"no images found at {args.images}")
    console.step(f"Labelling {count} images with {args.model}")

    from sparktf.transformer import TFGraphTransformer

    params: dict[str, Any] = {
        "modelPath": args.model,
        "modelFormat": args.model_format,
        "signatureName": args.signature,
        "labelsPath": args.labels,
        "topK": args.top_k,
        "topKCol": "topK",
        "imageScaling": args.image_scaling,
        "channelOrder": args.channel_order,
        "batchSize": args.batch_size,
        "handleInvalid": "skip" if args.skip_invalid else "error",
        "pathCol": path_col or "",
    }
    if args.image_size:
        params["imageSize"] = args.image_size
    if graphdef:
        params["inputMapping"] = {image_col: args.input_tensor}
        params["outputMapping"] = {args.output_tensor: "scores"}
    else:
        params["inputCol"] = image_col
        params["outputCol"] = "scores"
    stage = TFGraphTransformer(**params)
    labelled = stage.transform(df)
    keep = [c for c in (path_col,) if c] + ["scores", "topK"]
    result = labelled.select(*keep)
    start = time.time()
    if args.format == "csv":
        from pyspark.sql import functions as F

        csv = result.select(
            *[c for c in (path_col,) if c],
            F.concat_ws(
                ";",
                F.transform(
                    "topK",
                    lambda e: F.concat(e["label"], F.lit(":"), F.format_number(e["score"], 4)),
                ),
            ).alias("topK"),
        )
        csv.write.mode("overwrite").option("header", "true").csv(args.output)
    else:
        result.write.mode("overwrite").parquet(args.output)
    written = spark.read.parquet(args.output) if args.format == "parquet" else None
    rows = (written if written is not None else result).limit(max(args.show, 0)).collect()
    console.step(f"Labelled and wrote {count} rows in {time.time() - start:.1f}s")
    console.out(f"Wrote {count} rows to {args.output} ({args.format})")
    if rows:
        console.out(f"Sample (top {min(args.top_k, 3)} of {args.top_k} labels):")
        for row in rows:
            name = row[path_col] if path_col else "-"
            console.out(f"  {name}: {_top_k_pretty(row['topK'])}")
    return EXIT_OK


# -- demo --------------------------------------------------------------------------------------

_UPSCALE = 4


def write_digit_images(pixels: Any, labels: Sequence[int], folder: str) -> list[str]:
    """Write 8x8 digits (values 0..16) as grayscale PNGs upscaled 4x (32x32), 0..16 mapped to
    0..255 (white ink on black). Returns the file paths; each file name holds the true digit."""
    import numpy as np
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, (image, digit) in enumerate(zip(pixels, labels, strict=True)):
        values = np.asarray(image, dtype=np.float64).reshape(8, 8) * (255.0 / 16.0)
        big = np.kron(np.round(values).astype(np.uint8), np.ones((_UPSCALE, _UPSCALE), np.uint8))
        path = os.path.join(folder, f"digit_{i:02d}_true_{int(digit)}.png")
        Image.fromarray(big, mode="L").save(path)
        paths.append(path)
    return paths


def digit_image_model(classifier_model: Any) -> Any:
    """Wrap a TFClassificationModel trained on 64 digit features into a Keras model taking a
    32x32 grayscale image with pixels in 0..255 and returning 10 probabilities.

    The wrapper undoes what :func:`write_digit_images` did: 4x4 average pooling gives back the
    8x8 pixels, a rescaling maps 0..255 back to 0..16, and the trained network (which standardizes
    its input itself) is followed by a softmax over its logits.
    """
    import keras

    network = classifier_model.keras_model()
    side = 8 * _UPSCALE
    image = keras.Input(shape=(side, side), name="image")
    x = keras.layers.Reshape((side, side, 1), name="channel")(image)
    x = keras.layers.AveragePooling2D(_UPSCALE, name="downscale")(x)
    x = keras.layers.Flatten(name="pixels")(x)
    x = keras.layers.Rescaling(16.0 / 255.0, name="to_0_16")(x)
    scores = keras.layers.Softmax(name="probabilities")(network(x))
    return keras.Model(image, scores, name="digits_from_images")


def cmd_demo(args: argparse.Namespace, console: _Console) -> int:
    """``sparktf demo``."""
    start = time.time()
    spark = _spark(args, console)
    from sparktf.datasets import load_digits

    output = args.output
    os.makedirs(output, exist_ok=True)
    console.step("Loading the bundled scikit-learn digits (1,797 images of 8x8 pixels)")
    digits = load_digits(spark)
    train, test = digits.randomSplit([0.8, 0.2], seed=args.seed)
    train, test = train.cache(), test.cache()
    console.out(f"Digits: {train.count()} training rows, {test.count()} test rows")
    if args.quick:
        space = SearchSpace(hiddenLayers=[[16], [32]], learningRate=[0.003, 0.03], epochs=[3])
        folds = 2
    else:
        space = SearchSpace(
            hiddenLayers=[[32], [64, 32]], learningRate=[0.001, 0.003, 0.01], epochs=[15]
        )
        folds = 3
    result = run_tuning(
        train, test, space, output, console, seed=args.seed, folds=folds, dropout=0.1
    )

    console.step("Writing test digits as PNG files and labelling them with the best model")
    sample = test.orderBy("image_id").limit(args.images).collect()
    images_dir = os.path.join(output, "images")
    truth = [int(r["label"]) for r in sample]
    paths = write_digit_images([r["features"].toArray() for r in sample], truth, images_dir)
    labels_path = os.path.join(output, "labels.txt")
    with open(labels_path, "w") as handle:
        handle.write("\n".join(str(d) for d in range(10)) + "\n")
    model_path = os.path.join(output, "digits_image_model.keras")
    digit_image_model(result.best_model).save(model_path)

    from sparktf.transformer import TFGraphTransformer

    labeller = TFGraphTransformer(
        modelPath=model_path,
        inputCol="content",
        outputCol="probabilities",
        imageScaling="none",
        labelsPath=labels_path,
        topK=3,
    )
    images = read_images(spark, images_dir)
    labelled = labeller.transform(images).select("path", "topK")
    labelled.write.mode("overwrite").parquet(os.path.join(output, "labels.parquet"))
    rows = sorted(labelled.collect(), key=lambda r: r["path"])
    by_name = {os.path.basename(p): d for p, d in zip(paths, truth, strict=True)}
    console.out("")
    console.out(f"Labelled {len(rows)} digit images (in {images_dir}) with the best model:")
    right = 0
    for row in rows:
        name = os.path.basename(row["path"])
        top = row["topK"][0]["label"]
        right += top == str(by_name[name])
        console.out(f"  {name}: true {by_name[name]}, top 3: {_top_k_pretty(row['topK'])}")
    console.out(f"{right} of {len(rows)} images labelled correctly")
    console.out(f"Labels written to {os.path.join(output, 'labels.parquet')}")
    console.out(f"Demo finished in {time.time() - start:.0f}s")
    return EXIT_OK


_COMMANDS = {"demo": cmd_demo, "tune": cmd_tune, "label": cmd_label}


def _error_message(exc: BaseException) -> str:
    """One readable line (or a few) for an error raised while running."""
    name = type(exc).__name__
    if name == "Py4JJavaError":
        java = getattr(exc, "java_exception", None)
        text = str(java) if java is not None else str(exc)
        return text.strip().splitlines()[0] if text.strip() else name
    text = str(exc).strip()
    if name in ("AnalysisException", "PySparkException") or "pyspark" in type(exc).__module__:
        return text.splitlines()[0] if text else name
    if isinstance(exc, (FileNotFoundError, ValueError, TypeError, RuntimeError, OSError)):
        return text or name
    return f"{name}: {text}" if text else name


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sparktf`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit
    code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    _configure_logging(args.quiet)
    console = _Console(args.quiet)
    prog = f"sparktf {args.command}"
    try:
        return _COMMANDS[args.command](args, console)
    except UsageError as exc:
        if args.traceback:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.traceback:
            raise
        print(f"{prog}: error: {_error_message(exc)}", file=sys.stderr)
        if type(exc).__name__ != "JavaNotFoundError":
            print("(run again with --traceback for details)", file=sys.stderr)
        return EXIT_ERROR
