"""``sparktf tune`` on a folder of labelled images, from a pretrained network: the options
(TFClassifier's ``baseModel``, image and fine-tuning Params), the folders, the labels file.

Importing this module imports neither TensorFlow nor Spark.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from sparktf.cli._args import image_size, layer_counts
from sparktf.cli._console import Console, UsageError
from sparktf.cli._options import count_option, option
from sparktf.image import IMAGE_SCALINGS

__all__ = ["IMAGE_SCALINGS", "TRANSFER_OPTIONS", "fixed_params", "image_folders", "write_labels"]

#: Fine-tuning a pretrained network (sparktf's baseModel and image Params).
TRANSFER_OPTIONS = (
    option("--base-model", metavar="FILE", help="pretrained Keras network (.keras) to start from"),
    option(
        "--image-size",
        type=image_size,
        default=None,
        metavar="H,W",
        help="--images: size the images are resized to (default: the base's input size)",
    ),
    option(
        "--image-scaling",
        default=None,
        help="--images: pixel scaling the network expects (default: standardize)",
    ),
    option(
        "--trainable-layers",
        type=layer_counts,
        default=None,
        metavar="N,N",
        help="how many of the base's top layers train, to try (-1: all; default: 0, frozen)",
    ),
    count_option(
        "--fine-tune-epochs",
        None,
        help="epochs of a second phase that trains the --trainable-layers of the base too",
    ),
    option(
        "--fine-tune-learning-rate",
        type=float,
        default=None,
        metavar="RATE",
        help="learning rate of that second phase (default: 1e-5)",
    ),
)


def fixed_params(args: argparse.Namespace) -> dict[str, Any]:
    """The TFClassifier Params of the fine-tuning options given."""
    named = {
        "baseModel": args.base_model,
        "imageSize": args.image_size and list(args.image_size),
        "imageScaling": args.image_scaling,
        "fineTuneEpochs": args.fine_tune_epochs,
        "fineTuneLearningRate": args.fine_tune_learning_rate,
    }
    return {name: value for name, value in named.items() if value is not None}


def image_folders(spark: Any, args: argparse.Namespace, console: Console, train: Any = None):
    """The labelled images of ``--images`` (path and label), or with ``train`` (those) of
    ``--test-images``, which must hold the same class folders."""
    from sparktf.datasets import class_names, load_image_folder

    folder = args.test_images if train is not None else args.images
    console.step(f"Listing the images of {folder}")
    frame = load_image_folder(spark, folder)
    classes = None if train is None else class_names(train)
    if classes is not None and class_names(frame) != classes:
        raise UsageError(
            f"--test-images {folder}: its class folders {class_names(frame)} are not those of "
            f"--images {args.images}: {classes}"
        )
    return frame


def write_labels(train: Any, output: str) -> str:
    """``labels.txt`` in ``output``: the class names in label order, one per line, for
    ``sparktf label --labels``."""
    from sparktf.datasets import class_names

    path = os.path.join(output, "labels.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(class_names(train)) + "\n")
    return path
