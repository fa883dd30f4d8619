"""The original deployment: a trained model broadcast to the workers, images labelled in batches.

The blog applied a frozen Inception network to a folder of photos. No pretrained weights ship
with sparktf (and nothing is downloaded), so this example saves a small Keras model of its own: it
averages an image's pixels and scores that mean colour against ten named colours. The model is a
real Keras file, used exactly as a downloaded one would be: ``TFGraphTransformer`` reads it once
on the driver, broadcasts it, loads it once per Python worker and applies it to the images in
batches, giving each image its top-5 labels from a labels file.

Usage::

    python examples/label_images.py               # the two scikit-learn sample photos + crops
    python examples/label_images.py photos/       # your own folder of images
    python examples/label_images.py --quick       # fewer crops (also: SPARKTF_QUICK=1)

The Spark master comes from ``$SPARKTF_MASTER`` (default ``local[*]``).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from sparktf import TFGraphTransformer, get_spark

COLOURS = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "grey": (128, 128, 128),
    "red": (200, 30, 30),
    "green": (40, 150, 40),
    "blue": (30, 60, 200),
    "sky blue": (120, 180, 230),
    "yellow": (230, 210, 40),
    "brown": (120, 80, 40),
    "pink": (230, 150, 180),
}


def colour_model(size: int = 64, sharpness: float = 40.0):
    """A Keras model: (size, size, 3) pixels in [0, 1] -> one probability per named colour.

    The logit of colour c is ``sharpness * (2 m.c - |c|^2)`` for the mean pixel m, i.e. minus the
    squared distance ``|m - c|^2`` up to a term shared by every colour, so the softmax ranks the
    colours by how close they are to the image's mean colour.
    """
    import keras

    centres = np.array(list(COLOURS.values()), dtype=np.float32) / 255.0
    image = keras.Input(shape=(size, size, 3), name="image")
    mean = keras.layers.GlobalAveragePooling2D(name="mean_colour")(image)
    scores = keras.layers.Dense(len(COLOURS), activation="softmax", name="colour")(mean)
    model = keras.Model(image, scores, name="mean_colour_classifier")
    model.get_layer("colour").set_weights(
        [sharpness * 2.0 * centres.T, -sharpness * (centres**2).sum(axis=1)]
    )
    return model


def sample_images(folder: str, crops: int) -> str:
    """Write the two scikit-learn sample photos and ``crops`` crops of each as JPEG files."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    os.makedirs(folder, exist_ok=True)
    bunch = load_sample_images()
    rng = np.random.default_rng(0)
    for name, pixels in zip(bunch.filenames, bunch.images, strict=True):
        stem = os.path.splitext(os.path.basename(name))[0]
        Image.fromarray(pixels).save(os.path.join(folder, f"{stem}.jpg"))
        height, width = pixels.shape[:2]
        for i in range(crops):
            top, left = rng.integers(0, height - 96), rng.integers(0, width - 96)
            crop = pixels[top : top + 96, left : left + 96]
            Image.fromarray(crop).save(os.path.join(folder, f"{stem}_crop{i}.jpg"))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="?", help="folder of images (default: sample photos)")
    parser.add_argument("--quick", action="store_true", help="fewer images")
    parser.add_argument("--output", default="label_images_output", help="folder for the results")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("SPARKTF_QUICK") == "1"

    os.makedirs(args.output, exist_ok=True)
    folder = args.images or sample_images(f"{args.output}/images", 2 if quick else 6)
    model_path = f"{args.output}/colours.keras"
    colour_model().save(model_path)
    labels_path = f"{args.output}/colours.txt"
    with open(labels_path, "w") as handle:
        handle.write("\n".join(COLOURS) + "\n")

    spark = get_spark(app_name="label_images")
    images = spark.read.format("binaryFile").option("pathGlobFilter", "*.jpg").load(folder)
    labeller = TFGraphTransformer(
        modelPath=model_path,  # read once on the driver and broadcast
        inputCol="content",  # encoded JPEG bytes, decoded and resized to 64x64 on the workers
        outputCol="scores",
        imageScaling="unit",
        labelsPath=labels_path,
        topK=5,
        batchSize=16,
    )
    labelled = labeller.transform(images)
    for row in labelled.select("path", "topK").orderBy("path").collect():
        top = ", ".join(f"('{e['label']}', {e['score']:.3f})" for e in row["topK"])
        print(f"{os.path.basename(row['path'])}: [{top}]")
    labelled.select("path", "topK").write.mode("overwrite").parquet(f"{args.output}/labels")
    print(f"Top-5 labels written to {args.output}/labels")


if __name__ == "__main__":
    main()
