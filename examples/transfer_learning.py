"""Transfer learning: fine-tune a pretrained network on a folder of labelled images, then label.

The day-two task of a Spark user: "I have a folder of my own photos, one subfolder per class;
fine-tune a pretrained network on them, then label new images". With your own files::

    python examples/transfer_learning.py --images photos/ --base-model base.keras \\
        [--test-images more_photos/] [--image-size 160] [--scaling signed]
    python examples/transfer_learning.py [--quick]   # everything generated here

``--images`` holds one subfolder per class (Keras' ``image_dataset_from_directory`` layout),
``--base-model`` a ``.keras`` file of a pretrained network (for example one saved from
``keras.applications`` with ImageNet weights on a machine that can download them).

Without arguments, everything is made here, so that it runs anywhere (nothing is downloaded): a
small network is pretrained with plain Keras on scikit-learn's handwritten digits 0-4 and saved;
the new task is the digits 5-9 written as JPEG files, with only ``--per-class`` labelled
images of each. The output compares the fine-tuned network with the same network trained from
random weights on the same images, and labels a few test images by class name.

The Spark master comes from ``$SPARKTF_MASTER`` (default ``local[*]``).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from sparktf import TFClassifier, get_spark
from sparktf.datasets import class_names, load_image_folder

SIDE = 32  # the generated base network's input: 32x32 RGB in [0, 1]


def _digits_as_photos(images: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """scikit-learn's 8x8 digits (0..16) as ``side`` x ``side`` RGB photos: upscaled, tinted."""
    from PIL import Image

    photos = []
    for image in images:
        grey = Image.fromarray((image * 15.9).astype(np.uint8)).resize((side, side), Image.BILINEAR)
        alpha = np.asarray(grey, np.float32)[..., None] / 255.0
        ink, paper = rng.uniform(0.7, 1.0, 3), rng.uniform(0.0, 0.25, 3)
        photos.append(np.clip(255 * (alpha * ink + (1 - alpha) * paper), 0, 255).astype(np.uint8))
    return np.stack(photos)


def make_base(path: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Pretrain a small network on the digits 0-4 with plain Keras and save it as ``.keras``."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIDE, SIDE, 3))
    x = inputs
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu", name="features")(x)
    model = keras.Model(inputs, keras.layers.Dense(5, name="logits")(x))
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(images / 255.0, labels, epochs=15, batch_size=32, verbose=0)
    model.save(path)


def make_folders(work: str, per_class: int) -> tuple[str, str, str]:
    """The generated base network, and folders of training and test JPEGs of the digits 5-9."""
    from PIL import Image
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(0)
    digits = load_digits()
    source = digits.target < 5
    base = os.path.join(work, "base.keras")
    make_base(base, _digits_as_photos(digits.images[source], rng, SIDE), digits.target[source])
    folders = {"train": os.path.join(work, "train"), "test": os.path.join(work, "test")}
    order = rng.permutation(len(digits.target))
    for digit in range(5, 10):
        chosen = order[digits.target[order] == digit]
        photos = _digits_as_photos(digits.images[chosen], rng, 96)  # photo-like files
        for i, photo in enumerate(photos):
            folder = os.path.join(folders["train" if i < per_class else "test"], str(digit))
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(photo).save(os.path.join(folder, f"{chosen[i]}.jpg"), quality=90)
    return base, folders["train"], folders["test"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", help="folder of training images, one subfolder per class")
    parser.add_argument("--test-images", help="folder of test images (same classes)")
    parser.add_argument("--base-model", help=".keras file of the pretrained network")
    parser.add_argument("--image-size", type=int, help="side the images are resized to")
    parser.add_argument("--scaling", default="unit", help="pixel scaling the base expects")
    parser.add_argument(
        "--per-class", type=int, help="labels per class (generated; default 20, 10 with --quick)"
    )
    parser.add_argument("--epochs", type=int, help="default 8, 4 with --quick")
    parser.add_argument("--output", help="folder for the generated files (default: a new one)")
    parser.add_argument(
        "--quick", action="store_true", help="smaller defaults (also: SPARKTF_QUICK=1)"
    )
    args = parser.parse_args()
    quick = args.quick or os.environ.get("SPARKTF_QUICK") == "1"
    # --quick changes the defaults only: sizes given on the command line are kept
    args.per_class = args.per_class or (10 if quick else 20)
    args.epochs = args.epochs or (4 if quick else 8)
    spark = get_spark(master=os.environ.get("SPARKTF_MASTER", "local[*]"))
    work = args.output or tempfile.mkdtemp(prefix="sparktf-transfer-")
    os.makedirs(work, exist_ok=True)
    if args.images:
        if not args.base_model:
            parser.error("--images needs --base-model")
        base, train_dir, test_dir = args.base_model, args.images, args.test_images
    else:
        base, train_dir, test_dir = make_folders(work, args.per_class)

    train = load_image_folder(spark, train_dir).cache()
    names = class_names(train)
    print(f"{train.count()} training images of {len(names)} classes: {', '.join(names)}")
    common = dict(
        featuresCol="path",
        imageScaling=args.scaling,
        hiddenLayers=[],
        dropout=0.0,
        seed=7,
        **({"imageSize": [args.image_size, args.image_size]} if args.image_size else {}),
    )
    # Phase 1 trains the new head on the frozen base; phase 2 unfreezes the whole base at a
    # tenth of the learning rate (the base's batch normalization stays in inference mode).
    half = args.epochs // 2
    fine_tune = TFClassifier(
        baseModel=base,
        epochs=half,
        learningRate=1e-2,
        fineTuneEpochs=args.epochs - half,
        trainableLayers=-1,
        fineTuneLearningRate=1e-3,
        **common,
    )
    model = fine_tune.fit(train)
    if not test_dir:
        print("fine-tuned; give --test-images to score it")
        return
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    test = load_image_folder(spark, test_dir)
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy")
    scored = model.transform(test).cache()
    print(f"fine-tuned from the base: test accuracy {accuracy.evaluate(scored):.3f}")
    if not args.images:  # the same network from random weights, same images and budget
        import keras

        scratch = os.path.join(work, "scratch.keras")
        keras.models.clone_model(keras.models.load_model(base)).save(scratch)
        scratch_model = TFClassifier(
            baseModel=scratch, epochs=args.epochs, trainableLayers=-1, learningRate=1e-3, **common
        ).fit(train)
        print(
            "same network from random weights: test accuracy "
            f"{accuracy.evaluate(scratch_model.transform(test)):.3f}"
        )
    for row in scored.select("path", "prediction").limit(5).collect():
        print(f"  {os.path.basename(row['path'])}: {names[int(row['prediction'])]}")


if __name__ == "__main__":
    main()
