"""``sparktf tune``: grid or random search of TFClassifier on digits, MNIST IDX files or a Parquet
dataset, with a CrossValidator or a TrainValidationSplit."""

from __future__ import annotations

import argparse
import os
from typing import Any

from sparktf.cli._args import (
    check_output,
    check_spark_options,
    float_list,
    fraction,
    int_list,
    layer_lists,
    removed_on_failure,
    require_path,
    shape,
    start_spark,
)
from sparktf.cli._console import EXIT_OK, Console, UsageError
from sparktf.cli._options import (
    OVERWRITE_INTO,
    SEED,
    add_command,
    count_option,
    one_of,
    option,
    output_option,
    switch,
)
from sparktf.cli._tune_images import (
    IMAGE_SCALINGS,
    TRANSFER_OPTIONS,
    fixed_params,
    image_folders,
    write_labels,
)
from sparktf.workflow import SearchSpace, tune_classifier

_SUMMARY = "hyperparameter search of TFClassifier (grid or random, cross-validated)"
_DESCRIPTION = (
    "Grid or random search of TFClassifier with a CrossValidator or a TrainValidationSplit; "
    "every setting of a fold trains as its own Spark task. Writes report.csv (also printed), "
    "sensitivity.png, best_model/ (a TFClassificationModel saved with pyspark.ml persistence) and "
    "best_model.keras (the Keras network alone) to --output."
)

_DATA_OPTIONS = (
    # where the data comes from, if not the bundled digits
    one_of(
        option(
            "--mnist",
            metavar="DIR",
            help="folder with the four MNIST IDX files (gzipped or not); the t10k files are the "
            "test set",
        ),
        option(
            "--parquet", metavar="PATH", help="Parquet dataset with a features and a label column"
        ),
        option(
            "--images",
            metavar="DIR",
            help="folder of labelled images, one subfolder per class (sorted names are the "
            "labels 0..K-1, written to labels.txt in --output); the tasks read the files",
        ),
    ),
    option(
        "--test-images",
        metavar="DIR",
        help="--images: folder of test images with the same class folders (default: "
        "--test-fraction of --images)",
    ),
    option("--features-col", default="features", metavar="COL", help="features column (--parquet)"),
    option("--label-col", default="label", metavar="COL", help="label column (--parquet)"),
    count_option(
        "--limit",
        None,
        help="use at most this many training rows (a random sample), for a fast first run",
    ),
    option(
        "--test-fraction",
        type=fraction,
        default=0.2,
        metavar="F",
        help="fraction held out for the final test accuracy (not with --mnist; 0: none)",
    ),
)
_SEARCH_OPTIONS = (
    option("--search", choices=("grid", "random"), default="grid", help="search kind"),
    count_option(
        "--samples",
        8,
        help="random search: number of sampled settings (the learning rate is drawn "
        "log-uniformly between the smallest and largest --learning-rates, the other Params from "
        "their listed values)",
    ),
    SEED,
    option(
        "--validator",
        choices=("cv", "tvs"),
        default="cv",
        help="cv: CrossValidator; tvs: TrainValidationSplit",
    ),
    count_option("--folds", 3, help="CrossValidator folds (>= 2)"),
    option(
        "--train-ratio",
        type=fraction,
        default=0.75,
        metavar="F",
        help="TrainValidationSplit: fraction of the rows used for training",
    ),
    count_option(
        "--halving",
        None,
        metavar="FACTOR",
        help="search by successive halving (sparktf.search): every setting trains a few epochs "
        "and the best 1/FACTOR go on from their own weights, every fold of a rung in one Spark "
        "job (1: exhaustive, all folds at once); --epochs takes one value, the budget",
    ),
    option(
        "--checkpoint-dir",
        default=None,
        metavar="DIR",
        help="--halving: write each finished trial here; the same command run again resumes",
    ),
    option(
        "--mlflow-experiment",
        default=None,
        metavar="NAME",
        help="track the tuning in this MLflow experiment as it runs: a run for the tuning, one "
        "per trial (needs the mlflow package; the tracking URI from MLFLOW_TRACKING_URI)",
    ),
    option(
        "--trial-timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="--halving: the longest one trial may train (0: no limit)",
    ),
    count_option(
        "--parallelism",
        4,
        help="models scored on the validation data at once (the trainings of a fold always run "
        "as one Spark job, one task per setting)",
    ),
)
#: The values searched; the defaults (None) are SearchSpace's, or the smaller ones of --quick.
_VALUE_OPTIONS = (
    option(
        "--hidden-layers",
        type=layer_lists,
        default=None,
        metavar="N,N;N",
        help="hidden dense layer sizes to try, e.g. '64;128,64' tries [64] and [128, 64] "
        "(default: '32;64')",
    ),
    option(
        "--learning-rates",
        type=float_list,
        default=None,
        metavar="RATE,RATE",
        help="learning rates to try (default: '0.001,0.01')",
    ),
    option(
        "--epochs",
        type=int_list,
        default=None,
        metavar="N,N",
        help="numbers of epochs to try (default: 10)",
    ),
    option(
        "--batch-sizes",
        type=int_list,
        default=None,
        metavar="N,N",
        help="batch sizes to try (default: 32)",
    ),
    option(
        "--conv-layers",
        type=layer_lists,
        default=None,
        metavar="N,N;N",
        help="convolution filters to try, e.g. '32;32,64' (needs --input-shape; default: none)",
    ),
    option(
        "--input-shape",
        type=shape,
        default=None,
        metavar="N,N,N",
        help="shape each feature vector is reshaped to, e.g. '28,28,1' (default: flat; "
        "28,28,1 for --mnist with --conv-layers, 8,8,1 for digits with --conv-layers)",
    ),
    option(
        "--dropout", type=fraction, default=0.1, metavar="F", help="dropout after each hidden layer"
    ),
)
_OPTIONS = (
    switch("--quick", help="small defaults: 2 folds, 3 epochs, 2 x 2 grid"),
    output_option("sparktf-tune-output", "folder receiving results"),
    OVERWRITE_INTO,
)


def add_parser(commands: Any) -> None:
    """Add ``tune`` and its options to the sub-parsers ``commands``."""
    groups = (
        ("data (default: the bundled scikit-learn digits)", _DATA_OPTIONS),
        ("search", _SEARCH_OPTIONS),
        ("searched values (comma-separated; layers: ';' between)", _VALUE_OPTIONS),
        ("fine-tuning a pretrained network", TRANSFER_OPTIONS),
    )
    choices = {"--image-scaling": IMAGE_SCALINGS}
    add_command(commands, "tune", _SUMMARY, _DESCRIPTION, _OPTIONS, groups, choices=choices)


def quick_space() -> SearchSpace:
    """The small search space of ``--quick`` (a 2 x 2 grid of 3 epochs)."""
    return SearchSpace(hiddenLayers=[[16], [32]], learningRate=[0.003, 0.03], epochs=[3])


def _tune_space(args: argparse.Namespace) -> SearchSpace:
    space = quick_space() if args.quick else SearchSpace()
    for name, value in (
        ("hiddenLayers", args.hidden_layers),
        ("learningRate", args.learning_rates),
        ("epochs", args.epochs),
        ("batchSize", args.batch_sizes),
        ("convLayers", args.conv_layers),
        ("trainableLayers", args.trainable_layers),
    ):
        if value is not None:
            setattr(space, name, value)
    return space


def run(args: argparse.Namespace, console: Console) -> int:
    """``sparktf tune``."""
    space, folds, input_shape = _check_arguments(args)
    # 3. Spark; a failed run leaves no empty or half-written --output behind
    with removed_on_failure(args.output):
        spark = start_spark(args, console)
        train, test, data_name, features, label = _read_data(spark, args, console)
        train = train.cache()
        console.step(f"Training rows: {train.count()}")
        tune_classifier(
            train,
            args.output,
            test=test,
            space=space,
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
            echo=console.out,
            data_name=data_name,
            halving=args.halving,
            checkpoint_dir=args.checkpoint_dir,
            trial_timeout=args.trial_timeout,
            params=fixed_params(args),
            track=args.mlflow_experiment,
        )
        if args.images:
            write_labels(train, args.output)
    return EXIT_OK


def _check_arguments(args: argparse.Namespace) -> tuple[Any, int, list[int]]:
    """Check the arguments before Spark starts; return the search space, the folds and the
    input shape."""
    # 1. the syntax of every argument, and the rules between them
    check_spark_options(args)
    space = _tune_space(args)
    folds = 2 if args.quick and args.folds == 3 else args.folds
    if args.validator == "cv" and folds < 2:
        raise UsageError(f"--folds must be >= 2 for a CrossValidator, got {folds}")
    if args.halving is None and (args.checkpoint_dir or args.trial_timeout):
        raise UsageError("--checkpoint-dir and --trial-timeout need --halving")
    if args.halving is not None and len(space.epochs) != 1:
        raise UsageError(f"--halving needs one value of --epochs (the budget), got {space.epochs}")
    if not args.base_model and (args.trainable_layers or args.fine_tune_epochs):
        raise UsageError("--trainable-layers and --fine-tune-epochs need --base-model")
    if args.test_images and not args.images:
        raise UsageError("--test-images needs --images")
    if args.images and not (args.base_model or args.image_size):
        raise UsageError("--images needs --image-size, or --base-model (its input size)")
    if args.mlflow_experiment:
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise UsageError(
                "--mlflow-experiment needs the mlflow package: pip install mlflow"
            ) from None
    if args.trial_timeout < 0:
        raise UsageError(f"--trial-timeout must be >= 0, got {args.trial_timeout}")
    input_shape = args.input_shape
    if input_shape is None:
        uses_conv = any(space.convLayers)
        input_shape = ([28, 28, 1] if args.mnist else [8, 8, 1]) if uses_conv else []
        if uses_conv and args.parquet:
            raise UsageError("--conv-layers on --parquet data needs --input-shape")
    # 2. the paths and folders
    if args.mnist:
        require_path(args.mnist, "--mnist", "dir")
    if args.parquet:
        require_path(args.parquet, "--parquet")
    for flag, path in (("--images", args.images), ("--test-images", args.test_images)):
        if path:
            require_path(path, flag, "dir")
    if args.base_model:
        require_path(args.base_model, "--base-model")
    check_output(args.output, args.overwrite)
    return space, folds, input_shape


def _read_data(spark: Any, args: argparse.Namespace, console: Console) -> tuple:
    """The training rows, the test rows (or None), the data's name, the features and label
    columns."""
    from sparktf.datasets import load_digits, load_mnist

    features, label = "features", "label"
    test = None
    if args.mnist:
        console.step(f"Reading MNIST from {args.mnist}")
        train = load_mnist(spark, args.mnist, "train")
        data_name = "MNIST"
        test = load_mnist(spark, args.mnist, "test")
    elif args.parquet:
        console.step(f"Reading {args.parquet}")
        train = spark.read.parquet(args.parquet)
        data_name = os.path.basename(os.path.normpath(args.parquet))
        features, label = args.features_col, args.label_col
        missing = [c for c in (features, label) if c not in train.columns]
        if missing:
            raise UsageError(
                f"--parquet {args.parquet}: column(s) {missing} not found; the columns are "
                f"{train.columns} (choose with --features-col / --label-col)"
            )
    elif args.images:
        train, test, features = image_folders(spark, args, console), None, "path"
        if args.test_images:
            test = image_folders(spark, args, console, train)
        data_name = os.path.basename(os.path.normpath(args.images))
    else:
        console.step("Loading the bundled scikit-learn digits (1,797 images of 8x8 pixels)")
        train = load_digits(spark)
        data_name = "the scikit-learn digits"
    if args.limit:
        count = train.count()
        if args.limit < count:
            data_name += f" ({args.limit:,} rows)"
            train = train.sample(fraction=min(1.0, 1.1 * args.limit / count), seed=args.seed)
            train = train.limit(args.limit)
    if test is None and args.test_fraction > 0:
        train, test = train.randomSplit([1 - args.test_fraction, args.test_fraction], args.seed)
    return train, test, data_name, features, label
