"""``sparktf demo``: the whole story on the bundled digits: tune TFClassifier with a
CrossValidator, print the report, save the sensitivity plot and the best model, then label a few
digit images with it through TFGraphTransformer."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from typing import Any

from sparktf.cli._args import check_output, check_spark_options, start_spark
from sparktf.cli._console import EXIT_OK, Console
from sparktf.cli._options import (
    OVERWRITE_INTO,
    SEED,
    add_command,
    count_option,
    output_option,
    switch,
)
from sparktf.cli.label import read_images, top_k_pretty
from sparktf.cli.tune import quick_space
from sparktf.workflow import SearchSpace, tune_classifier

_SUMMARY = "tune on the bundled digits, report, plot, and label images with the best model"
_DESCRIPTION = (
    "The whole story on the bundled scikit-learn digits (no download): a CrossValidator tunes "
    "TFClassifier over hidden layers x learning rate as parallel Spark tasks; the report table, "
    "the test accuracy of the best model and a sensitivity plot follow; then digit images are "
    "written as PNG files and labelled with the best model through TFGraphTransformer."
)

_OPTIONS = (
    output_option("sparktf-demo-output", "folder receiving every result"),
    OVERWRITE_INTO,
    switch("--quick", help="a tiny run (2 x 2 grid, 2 folds, 3 epochs)"),
    count_option("--images", 8, help="number of test digits written and labelled"),
    SEED,
)


def add_parser(commands: Any) -> None:
    """Add ``demo`` and its options to the sub-parsers ``commands``."""
    add_command(commands, "demo", _SUMMARY, _DESCRIPTION, _OPTIONS)


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
    from sparktf._quiet import import_tensorflow

    import_tensorflow()  # before Keras loads it, without its loading notices
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


def run(args: argparse.Namespace, console: Console) -> int:
    """``sparktf demo``."""
    start = time.time()
    check_spark_options(args)  # the syntax of every argument, then the folder, then Spark
    check_output(args.output, args.overwrite)
    spark = start_spark(args, console)
    os.makedirs(args.output, exist_ok=True)
    train, test = _load_digits(spark, args.seed, console)
    result = _tune(train, test, args, console)
    console.step("Writing test digits as PNG files and labelling them with the best model")
    images_dir = os.path.join(args.output, "images")
    truth = _write_test_images(test, args.images, images_dir)
    model_path, labels_path = _write_image_model(result.best_model, args.output)
    labels = os.path.join(args.output, "labels.parquet")
    rows = _label_images(spark, images_dir, model_path, labels_path, labels)
    console.out("")
    console.out(f"Labelled {len(rows)} digit images (in {images_dir}) with the best model:")
    _print_labels(rows, truth, console)
    console.out(f"Labels written to {labels}")
    console.out(f"Demo finished in {time.time() - start:.0f}s")
    return EXIT_OK


def _load_digits(spark: Any, seed: int, console: Console) -> tuple[Any, Any]:
    """The bundled digits split 80/20 into cached training and test rows."""
    from sparktf.datasets import load_digits

    console.step("Loading the bundled scikit-learn digits (1,797 images of 8x8 pixels)")
    train, test = load_digits(spark).randomSplit([0.8, 0.2], seed=seed)
    train, test = train.cache(), test.cache()
    console.out(f"Digits: {train.count()} training rows, {test.count()} test rows")
    return train, test


def _tune(train: Any, test: Any, args: argparse.Namespace, console: Console) -> Any:
    """Tune TFClassifier on ``train`` with a CrossValidator (a 2 x 3 grid of 15 epochs and 3
    folds, or with --quick a 2 x 2 grid of 3 epochs and 2 folds), scored on ``test``, and write
    the results to --output; the :class:`~sparktf.workflow.TuningResult`."""
    if args.quick:
        space, folds = quick_space(), 2
    else:
        space = SearchSpace(
            hiddenLayers=[[32], [64, 32]], learningRate=[0.001, 0.003, 0.01], epochs=[15]
        )
        folds = 3
    return tune_classifier(
        train,
        args.output,
        test=test,
        space=space,
        seed=args.seed,
        folds=folds,
        dropout=0.1,
        echo=console.out,
        data_name="the scikit-learn digits",
    )


def _write_test_images(test: Any, count: int, folder: str) -> dict[str, int]:
    """Write the first ``count`` test digits as PNG files into ``folder``; the true digit of
    each, by file name."""
    sample = test.orderBy("image_id").limit(count).collect()
    truth = [int(r["label"]) for r in sample]
    paths = write_digit_images([r["features"].toArray() for r in sample], truth, folder)
    return {os.path.basename(p): d for p, d in zip(paths, truth, strict=True)}


def _write_image_model(best_model: Any, output: str) -> tuple[str, str]:
    """Save the best model wrapped to take digit images (:func:`digit_image_model`) and the
    labels file of the ten digits into ``output``; their paths."""
    labels_path = os.path.join(output, "labels.txt")
    with open(labels_path, "w") as handle:
        handle.write("\n".join(str(d) for d in range(10)) + "\n")
    model_path = os.path.join(output, "digits_image_model.keras")
    digit_image_model(best_model).save(model_path)
    return model_path, labels_path


def _label_images(
    spark: Any, images_dir: str, model_path: str, labels_path: str, output: str
) -> list[Any]:
    """Label the images of ``images_dir`` with the model through TFGraphTransformer, write the
    path and top-3 labels of each to the Parquet folder ``output``; the rows, by path."""
    from sparktf.transformer import TFGraphTransformer

    labeller = TFGraphTransformer(
        modelPath=model_path,
        inputCol="content",
        outputCol="probabilities",
        imageScaling="none",
        labelsPath=labels_path,
        topK=3,
    )
    labelled = labeller.transform(read_images(spark, images_dir)).select("path", "topK")
    labelled.write.mode("overwrite").parquet(output)
    return sorted(labelled.collect(), key=lambda r: r["path"])


def _print_labels(rows: Sequence[Any], truth: dict[str, int], console: Console) -> None:
    """Print each image's true digit and top 3 labels, then how many are labelled right."""
    right = 0
    for row in rows:
        name = os.path.basename(row["path"])
        top = row["topK"][0]["label"]
        right += top == str(truth[name])
        console.out(f"  {name}: true {truth[name]}, top 3: {top_k_pretty(row['topK'])}")
    console.out(f"{right} of {len(rows)} images labelled correctly")
