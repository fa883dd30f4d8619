"""Networks, JPEG sets and the plain-Keras baseline for benchmarks/bench_transfer.py (no Spark).

No pretrained ImageNet weights can be downloaded here, so a pretrained network is made the honest
way: a small convolutional network is trained on every MNIST training image of the digits 0-4
(:func:`pretrained_base`), and the new task is the digits 5-9, written as JPEG files of
photo-like size (:func:`write_digit_jpegs`: upscaled, RGB, a random tint and sensor-like noise,
so that they are not MNIST's clean grey squares). :func:`scratch_copy` saves the same
architecture with fresh random weights (the "from scratch" side: same network, same budget,
no knowledge). :func:`keras_fit_images_per_second` is the baseline of the input pipeline: a plain
Keras ``fit`` over a ``tf.data`` pipeline reading the same files in one process.

Everything is deterministic for a given seed and cached in a work folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

#: The base network's input: MNIST digits upscaled to 32x32, as RGB, scaled to [0, 1].
BASE_SIDE = 32
#: The layer a classifier head is cut at (the base's feature layer).
FEATURE_LAYER = "features"


def mnist(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``split`` (train or test) as uint8 images (n x 28 x 28) and int labels."""
    from sparktf.datasets import _MNIST_FILES, _find, read_idx

    images_stem, labels_stem = _MNIST_FILES[split]
    images = read_idx(_find(directory, images_stem))
    labels = read_idx(_find(directory, labels_stem)).astype(np.int64)
    return images, labels


def base_architecture(keras, classes: int):
    """The base network: three convolution blocks, a 64-unit feature layer, ``classes`` logits.
    Its input is ``BASE_SIDE`` x ``BASE_SIDE`` RGB in [0, 1]."""
    inputs = keras.Input((BASE_SIDE, BASE_SIDE, 3), name="image")
    x = inputs
    for i, filters in enumerate((32, 64, 64)):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(64, activation="relu", name=FEATURE_LAYER)(x)
    outputs = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="digits_0_4")


def _as_base_input(images: np.ndarray) -> np.ndarray:
    """28x28 grey digits as the base's 32x32 RGB input in [0, 1] (bilinear upscale)."""
    import tensorflow as tf

    x = tf.image.resize(images[..., None].astype(np.float32) / 255.0, (BASE_SIDE, BASE_SIDE))
    return np.repeat(x.numpy(), 3, axis=-1)


def pretrained_base(work: str, mnist_dir: str, epochs: int = 3, seed: int = 0) -> str:
    """The ``.keras`` file of the base trained on all MNIST training images of 0-4 (cached)."""
    path = os.path.join(work, f"base-0to4-e{epochs}-s{seed}.keras")
    if os.path.exists(path):
        return path
    import keras

    keras.utils.set_random_seed(seed)
    images, labels = mnist(mnist_dir, "train")
    keep = labels < 5
    x, y = _as_base_input(images[keep]), labels[keep]
    model = base_architecture(keras, 5)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(x, y, batch_size=128, epochs=epochs, verbose=0)
    test_images, test_labels = mnist(mnist_dir, "test")
    held = test_labels < 5
    _, accuracy = model.evaluate(
        _as_base_input(test_images[held]), test_labels[held], batch_size=512, verbose=0
    )
    print(
        f"base: trained on {len(y)} MNIST images of 0-4 for {epochs} epochs in "
        f"{time.perf_counter() - start:.0f} s; test accuracy on 0-4: {accuracy:.4f}"
    )
    os.makedirs(work, exist_ok=True)
    model.save(path)
    return path


def scratch_copy(work: str, seed: int = 1) -> str:
    """The base's architecture with fresh random weights, saved as ``.keras``."""
    path = os.path.join(work, f"scratch-s{seed}.keras")
    if not os.path.exists(path):
        import keras

        keras.utils.set_random_seed(seed)
        base_architecture(keras, 5).save(path)
    return path


def _photo_like(digit: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 grey digit as a ``side`` x ``side`` RGB photo: upscaled, tinted ink on a tinted
    background, with a little noise."""
    from PIL import Image

    grey = np.asarray(Image.fromarray(digit).resize((side, side), Image.BILINEAR), np.float32)
    ink = rng.uniform(0.7, 1.0, 3)
    paper = rng.uniform(0.0, 0.25, 3)
    alpha = grey[..., None] / 255.0
    rgb = 255.0 * (alpha * ink + (1.0 - alpha) * paper)
    rgb += rng.normal(0.0, 6.0, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_digit_jpegs(
    work: str,
    mnist_dir: str,
    split: str,
    per_class: int | None,
    side: int = 96,
    digits: Sequence[int] = (5, 6, 7, 8, 9),
    seed: int = 0,
) -> str:
    """A folder of JPEG files, one subfolder per digit (``load_image_folder``'s layout): the
    first ``per_class`` images of each digit of the split (in a seeded random order), or all of
    them when ``per_class`` is None. Cached by its settings; returns the folder."""
    from PIL import Image

    name = f"{split}-{per_class or 'all'}-{side}px-s{seed}"
    folder = os.path.join(work, name)
    done = os.path.join(folder, ".done")
    if os.path.exists(done):
        return folder
    images, labels = mnist(mnist_dir, split)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    for digit in digits:
        chosen = order[labels[order] == digit]
        if per_class is not None:
            chosen = chosen[:per_class]
        os.makedirs(os.path.join(folder, str(digit)), exist_ok=True)
        for index in chosen:
            photo = _photo_like(images[index], side, rng)
            path = os.path.join(folder, str(digit), f"{split}-{index:05d}.jpg")
            Image.fromarray(photo).save(path, quality=90)
    open(done, "w").close()
    return folder


def folder_files(folder: str) -> tuple[list[str], np.ndarray]:
    """The image files of a class-per-subfolder folder and their label indices (sorted
    class names, as ``load_image_folder`` numbers them)."""
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    files, labels = [], []
    for index, name in enumerate(classes):
        for entry in sorted(os.scandir(os.path.join(folder, name)), key=lambda e: e.name):
            files.append(entry.path)
            labels.append(index)
    return files, np.asarray(labels, dtype=np.int64)


def image_dataset(files: Sequence[str], labels: np.ndarray, side: int, batch: int, seed: int):
    """The ``tf.data`` baseline's input: read, decode, resize, scale to [0, 1], shuffled batches."""
    import tensorflow as tf

    def load(path, label):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        image = tf.image.resize(image, (side, side)) / 255.0
        return image, label

    dataset = tf.data.Dataset.from_tensor_slices((list(files), labels))
    dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch).prefetch(tf.data.AUTOTUNE)


def keras_fit_images_per_second(
    model, files: Sequence[str], labels: np.ndarray, side: int, batch: int, epochs: int
) -> float:
    """Images per second of a plain Keras ``fit`` of ``model`` (compiled here with Adam) over
    :func:`image_dataset`: the whole ``fit`` call, as sparktf's training time is measured
    (tracing and the first reads included)."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    dataset = image_dataset(files, labels, side, batch, seed=0)
    start = time.perf_counter()
    model.fit(dataset, epochs=epochs, shuffle=False, verbose=0)  # the dataset shuffles
    return len(files) * epochs / (time.perf_counter() - start)


def headed(keras, base_path: str, classes: int):
    """The base cut before its last layer (its classifier head) with a new ``classes``-logit
    head, its BatchNormalization layers frozen as sparktf freezes a base's: the network the
    fine-tune trains, for the baseline."""
    base = keras.models.load_model(base_path)
    for layer in base._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False  # as sparktf keeps a base's: inference mode, no updates
    cut = keras.Model(base.inputs, base.layers[-2].output)
    outputs = keras.layers.Dense(classes, name="head")(cut.output)
    return keras.Model(cut.inputs, outputs)
