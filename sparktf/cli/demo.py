"""``sparktf demo``: the whole story on the bundled digits: tune TFClassifier with a
CrossValidator, print the report, save the sensitivity plot and the best model, then label a few
digit images with it through TFGraphTransformer."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from typing import Any

from sparktf.cli._args import (
    Formatter,
    add_common_options,
    check_output,
    check_spark_options,
    positive_int,
    start_spark,
)
from sparktf.cli._console import EXIT_OK, Console
from sparktf.cli.label import read_images, top_k_pretty
from sparktf.workflow import SearchSpace, tune_classifier


def add_parser(commands: Any) -> None:
    """Add ``demo`` and its options to the sub-parsers ``commands``."""
    demo = commands.add_parser(
        "demo",
        help="tune on the bundled digits, report, plot, and label images with the best model",
        description="The whole story on the bundled scikit-learn digits (no download): a "
        "CrossValidator tunes TFClassifier over hidden layers x learning rate as parallel Spark "
        "tasks; the report table, the test accuracy of the best model and a sensitivity plot "
        "follow; then digit images are written as PNG files and labelled with the best model "
        "through TFGraphTransformer.",
        formatter_class=Formatter,
    )
    demo.add_argument(
        "--output",
        default="sparktf-demo-output",
        metavar="DIR",
        help="folder receiving every result",
    )
    demo.add_argument(
        "--overwrite",
        action="store_true",
        help="write into --output even if it holds files (files of the same name are replaced)",
    )
    demo.add_argument(
        "--quick", action="store_true", help="a tiny run (2 x 2 grid, 2 folds, 3 epochs)"
    )
    demo.add_argument(
        "--images",
        type=positive_int,
        default=8,
        metavar="N",
        help="number of test digits written and labelled",
    )
    demo.add_argument(
        "--seed", type=int, default=42, metavar="N", help="seed of splits, folds and training"
    )
    add_common_options(demo)


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
    result = tune_classifier(
        train,
        output,
        test=test,
        space=space,
        seed=args.seed,
        folds=folds,
        dropout=0.1,
        echo=console.out,
        data_name="the scikit-learn digits",
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
        console.out(f"  {name}: true {by_name[name]}, top 3: {top_k_pretty(row['topK'])}")
    console.out(f"{right} of {len(rows)} images labelled correctly")
    console.out(f"Labels written to {os.path.join(output, 'labels.parquet')}")
    console.out(f"Demo finished in {time.time() - start:.0f}s")
    return EXIT_OK
