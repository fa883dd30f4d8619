"""Photos, networks and comparisons for benchmarks/bench_photos.py (no Spark in here).

* :func:`make_set` writes JPEGs made from scikit-learn's two sample photographs (china.jpg and
  flower.jpg, 427x640): random crops of a chosen orientation and aspect, horizontal flips, and
  rescales to a drawn size, re-encoded with Pillow. Photo-sized images get a little fixed
  sensor-like noise so that their files hold about as much detail per pixel as camera JPEGs
  (an upscaled 427x640 crop alone would be unusually smooth, and cheap to entropy-decode).
* :func:`make_models` builds an ImageNet-class Keras network with random weights (no download),
  rescales its last layer on crops of the same photographs so that its scores depend on the
  image (see :func:`calibrate`), saves it as ``.keras`` and as a frozen GraphDef whose input is
  one encoded JPEG string (``DecodeJpeg/contents:0``, as in the 2016 Inception graph).
* :func:`tf_data_scores` is the single-process ``tf.data`` program; :func:`model_seconds` times
  the network alone on decoded batches.
* :func:`agreement` compares two score matrices row by row.

Everything is deterministic for a given seed, and cached in a work folder by its settings.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Networks: Keras application, input side, pixel scaling the application expects.
NETWORKS = {
    "mobilenetv2": ("MobileNetV2", 224, "signed"),
    "inceptionv3": ("InceptionV3", 299, "signed"),
}
#: Shapes photographs come in: width / height of a landscape frame.
ASPECTS = (4 / 3, 3 / 2, 16 / 9, 1.0)
CLASSES = 1000
#: Bumped whenever the generated files would change for the same settings.
GENERATOR_VERSION = 2
INPUT_NAME = "DecodeJpeg/contents"


# -- the photographs ---------------------------------------------------------------------------


def sample_photos() -> list[np.ndarray]:
    """scikit-learn's two sample photographs, uint8 RGB arrays of 427x640."""
    from sklearn.datasets import load_sample_images

    return [np.asarray(image, dtype=np.uint8) for image in load_sample_images().images]


def _frame(rng: np.random.Generator) -> float:
    """Width / height of a frame: landscape about two times in three, else portrait."""
    aspect = ASPECTS[min(int(rng.random() * len(ASPECTS)), len(ASPECTS) - 1)]
    return aspect if rng.random() < 0.65 else 1.0 / aspect


def _crop(source: np.ndarray, aspect: float, rng: np.random.Generator) -> np.ndarray:
    """A random crop of ``source`` with width / height ``aspect``, 50-100% of the largest such
    crop, flipped left-right half of the time."""
    height, width = source.shape[:2]
    crop_w = min(width, height * aspect)
    crop_h = crop_w / aspect
    scale = rng.uniform(0.5, 1.0)
    crop_w, crop_h = max(8, round(crop_w * scale)), max(8, round(crop_h * scale))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    crop = source[top : top + crop_h, left : left + crop_w]
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def _noise_tile(rng: np.random.Generator, sigma: float) -> np.ndarray:
    return np.round(rng.normal(0.0, sigma, (257, 263, 3))).astype(np.int16)


def _add_noise(pixels: np.ndarray, tile: np.ndarray) -> np.ndarray:
    reps = (-(-pixels.shape[0] // tile.shape[0]), -(-pixels.shape[1] // tile.shape[1]), 1)
    noise = np.tile(tile, reps)[: pixels.shape[0], : pixels.shape[1]]
    return np.clip(pixels.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class SetSpec:
    """A set of generated JPEGs. ``kind`` is ``photo`` (``megapixels`` range, with ``noise``) or
    ``presized`` (shorter side in ``side`` to ``side * 8 / 7``: 224-256 for a 224 network)."""

    kind: str
    count: int
    seed: int
    megapixels: tuple[float, float] = (2.0, 12.0)
    side: int = 224
    quality: int = 90
    noise: float = 2.0
    version: int = GENERATOR_VERSION  # a change to the generator makes new folders

    @property
    def name(self) -> str:
        return "photo" if self.kind == "photo" else f"presized-{self.side}"

    def folder_name(self) -> str:
        if self.kind == "photo":
            low, high = self.megapixels
            return (
                f"photo-{self.count}-mp{low:g}-{high:g}-q{self.quality}-n{self.noise:g}"
                f"-s{self.seed}-v{self.version}"
            )
        return f"presized{self.side}-{self.count}-q{self.quality}-s{self.seed}-v{self.version}"


def make_set(spec: SetSpec, workdir: str) -> dict[str, Any]:
    """Write the set's JPEGs under ``workdir`` (once: a complete folder is reused) and return its
    manifest: ``folder`` and one entry per file (name, width, height, bytes)."""
    from PIL import Image

    folder = os.path.join(workdir, "data", spec.folder_name())
    manifest_path = os.path.join(folder, "manifest.json")
    if os.path.exists(manifest_path):
        with open(manifest_path) as handle:
            manifest = json.load(handle)
        if manifest.get("spec") == asdict(spec):
            manifest["folder"] = folder
            return manifest
    os.makedirs(folder, exist_ok=True)
    sources = sample_photos()
    rng = np.random.default_rng([spec.seed, 0 if spec.kind == "photo" else spec.side])
    tile = _noise_tile(rng, spec.noise) if spec.kind == "photo" and spec.noise > 0 else None
    files = []
    for index in range(spec.count):
        aspect = _frame(rng)
        crop = _crop(sources[index % len(sources)], aspect, rng)
        if spec.kind == "photo":
            pixels = rng.uniform(*spec.megapixels) * 1e6
            width = round((pixels * aspect) ** 0.5)
            height = round(width / aspect)
        else:
            short = rng.uniform(spec.side, spec.side * 8 / 7)
            landscape = aspect >= 1
            width = round(short * aspect) if landscape else round(short)
            height = round(short) if landscape else round(short / aspect)
        image = Image.fromarray(np.ascontiguousarray(crop)).resize(
            (width, height), Image.Resampling.BICUBIC
        )
        if tile is not None:
            image = Image.fromarray(_add_noise(np.asarray(image), tile))
        name = f"{spec.kind}-{index:04d}.jpg"
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=spec.quality)
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(buffer.getvalue())
        files.append({"name": name, "width": width, "height": height, "bytes": buffer.tell()})
    manifest = {"spec": asdict(spec), "files": files}
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle)
    manifest["folder"] = folder
    return manifest


def describe_set(manifest: dict[str, Any]) -> str:
    files = manifest["files"]
    mp = sorted(f["width"] * f["height"] / 1e6 for f in files)
    size = sorted(f["bytes"] / 2**20 for f in files)
    portrait = sum(f["height"] > f["width"] for f in files)
    return (
        f"{len(files)} JPEGs, {mp[0]:.2f}-{mp[-1]:.2f} MP (median {np.median(mp):.2f}), "
        f"{np.median(size):.2f} MiB median file, {portrait} portrait"
    )


def files_of(manifest: dict[str, Any]) -> list[str]:
    return [os.path.join(manifest["folder"], f["name"]) for f in manifest["files"]]


# -- the networks ------------------------------------------------------------------------------


def _calibration_batch(side: int, count: int, seed: int) -> np.ndarray:
    """``count`` crops of the sample photographs at ``side`` x ``side``, scaled to [-1, 1]."""
    from PIL import Image

    rng = np.random.default_rng([seed, side, 1])
    sources = sample_photos()
    crops = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(_crop(sources[i % 2], _frame(rng), rng))).resize(
                (side, side), Image.Resampling.BILINEAR
            ),
            np.float32,
        )
        for i in range(count)
    ]
    return np.stack(crops) / np.float32(127.5) - np.float32(1.0)


def calibrate(model: Any, batch: np.ndarray, spread: float = 3.0) -> None:
    """Make a randomly initialised classifier's scores depend on its input, smoothly.

    Freshly initialised, an ImageNet network gives every image almost the same near-uniform
    scores (0.001 each: its pooled features are tiny and nearly constant), so a comparison of two
    decodings would find them equal whatever they are. The final dense layer is therefore rescaled
    so that it reads the pooled features standardised over ``batch`` (each feature's mean taken
    off, divided by its standard deviation, floored at a tenth of the median one) and gives
    logits with standard deviation ``spread``: a peaked softmax whose winner changes from image
    to image, as a trained network's does. The convolutions keep their random weights and the
    batch normalisations their initial statistics: recalibrating those on data makes the
    network chaotic (one grey level of noise then changes every top-1 class), far more sensitive
    to small pixel changes than a trained network. It remains a random network: how it reacts to
    a different decoder or resize is indicative, not a trained network's figure.
    """
    import keras

    head = model.get_layer("predictions")
    features = keras.Model(model.input, head.input)(batch, training=False)
    features = np.asarray(features, np.float64)
    mean, std = features.mean(0), features.std(0)
    floor = 0.1 * float(np.median(std[std > 0])) if np.any(std > 0) else 1.0
    std = np.maximum(std, floor)
    kernel, _ = head.get_weights()
    logits = ((features - mean) / std) @ kernel
    gain = spread / logits.std()
    head.set_weights(
        [
            (kernel / std[:, None] * gain).astype(np.float32),
            (-(mean / std) @ kernel * gain).astype(np.float32),
        ]
    )


def frozen_graph(model: Any, side: int, scaling: str = "signed") -> tuple[bytes, str]:
    """``model`` as a frozen GraphDef that takes ONE encoded JPEG (a scalar string placeholder
    ``DecodeJpeg/contents``): decode, bilinear resize to ``side``, scale, then the network.
    Returns the serialized graph and the name of its scores tensor ([1, classes])."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    def one_jpeg(contents):
        image = tf.io.decode_jpeg(contents, channels=3)
        image = scale_pixels(tf.image.resize(image[None], [side, side]), scaling)
        return model(image, training=False)

    spec = tf.TensorSpec([], tf.string, name=INPUT_NAME)
    frozen = convert_variables_to_constants_v2(tf.function(one_jpeg).get_concrete_function(spec))
    return frozen.graph.as_graph_def().SerializeToString(), frozen.outputs[0].name


def scale_pixels(pixels: Any, scaling: str) -> Any:
    """0..255 pixels (float) to the network's range (``signed``: [-1, 1]; ``unit``: [0, 1])."""
    if scaling == "signed":
        return pixels / 127.5 - 1.0
    if scaling == "unit":
        return pixels / 255.0
    return pixels


@dataclass(frozen=True)
class ModelFiles:
    name: str
    side: int
    scaling: str
    keras: str
    graph: str
    output: str  # the frozen graph's scores tensor
    labels: str
    built_seconds: float


def make_models(name: str, workdir: str, seed: int, alpha: float = 1.0) -> ModelFiles:
    """Build (once: cached under ``workdir``) the network ``name`` of :data:`NETWORKS` with
    random weights from ``seed``, calibrated; save it as .keras and as a frozen GraphDef."""
    application, side, scaling = NETWORKS[name]
    tag = f"{name}-a{alpha:g}-s{seed}" if name == "mobilenetv2" else f"{name}-s{seed}"
    folder = os.path.join(workdir, "models", tag)
    meta_path = os.path.join(folder, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path) as handle:
            return ModelFiles(**json.load(handle))
    os.makedirs(folder, exist_ok=True)
    import keras

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    kwargs: dict[str, Any] = {"alpha": alpha} if name == "mobilenetv2" else {}
    model = getattr(keras.applications, application)(
        input_shape=(side, side, 3), weights=None, classes=CLASSES, **kwargs
    )
    calibrate(model, _calibration_batch(side, 64, seed))
    keras_path = os.path.join(folder, f"{tag}.keras")
    model.save(keras_path)
    graph, output = frozen_graph(keras.models.load_model(keras_path), side, scaling)
    graph_path = os.path.join(folder, f"{tag}.pb")
    with open(graph_path, "wb") as handle:
        handle.write(graph)
    labels = os.path.join(folder, "labels.txt")
    with open(labels, "w") as handle:
        handle.write("".join(f"class_{i:04d}\n" for i in range(CLASSES)))
    files = ModelFiles(
        name, side, scaling, keras_path, graph_path, output, labels, time.perf_counter() - start
    )
    with open(meta_path, "w") as handle:
        json.dump(asdict(files), handle)
    return files


# -- the single-process side and the network alone -------------------------------------------


def model_function(model: Any, side: int) -> Callable[[Any], Any]:
    """The network as one ``tf.function`` over batches of ``side`` x ``side`` RGB floats."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, side, side, 3], tf.float32)
    return tf.function(lambda batch: model(batch, training=False), input_signature=[spec])


def image_dataset(files: Sequence[str], side: int, scaling: str, batch: int) -> Any:
    """``tf.data``: read, ``decode_jpeg``, bilinear ``resize``, scale; parallel map with
    AUTOTUNE, batches, prefetch."""
    import tensorflow as tf

    def load(path):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        return scale_pixels(tf.image.resize(image, [side, side]), scaling)

    return (
        tf.data.Dataset.from_tensor_slices(list(files))
        .map(load, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch)
        .prefetch(tf.data.AUTOTUNE)
    )


def tf_data_scores(
    files: Sequence[str], call: Callable[[Any], Any], side: int, scaling: str, batch: int
) -> np.ndarray:
    """Side (a): the scores of every file, in the order of ``files``."""
    dataset = image_dataset(files, side, scaling, batch)
    return np.concatenate([np.asarray(call(images)) for images in dataset])


def decoded_batches(files: Sequence[str], side: int, scaling: str, batch: int) -> list[Any]:
    """The images as the network takes them, decoded once, in batches of ``batch``."""
    return [images.numpy() for images in image_dataset(files, side, scaling, batch)]


def model_seconds(call: Callable[[Any], Any], batches: Sequence[Any]) -> float:
    """Seconds the network alone takes over ``batches`` (already decoded), scores fetched."""
    start = time.perf_counter()
    for images in batches:
        np.asarray(call(images))
    return time.perf_counter() - start


# -- comparing two sets of predictions -------------------------------------------------------


def agreement(scores_a: Any, scores_b: Any, k: int = 5) -> dict[str, float]:
    """How far two score matrices (rows: images in the same order; columns: classes) agree.

    ``top1``: share of rows with the same best class; ``top5_overlap``: mean share of the ``k``
    best classes the two have in common (order ignored); ``top5_same``: share of rows whose ``k``
    best classes are the same set; ``mean_abs_diff`` / ``max_abs_diff``: of all scores.

    >>> a = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    >>> b = np.array([[0.6, 0.3, 0.1], [0.1, 0.6, 0.3]])
    >>> result = agreement(a, b, k=2)
    >>> result["top1"], result["top5_overlap"], result["top5_same"]
    (0.5, 1.0, 1.0)
    >>> round(result["mean_abs_diff"], 4)
    0.1333
    """
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"agreement needs two score matrices of one shape. Got {list(a.shape)} and "
            f"{list(b.shape)} instead."
        )
    if not len(a):
        names = ("top1", "top5_overlap", "top5_same", "mean_abs_diff", "max_abs_diff")
        return {"rows": 0, **{name: float("nan") for name in names}}
    k = min(k, a.shape[1])
    best_a = np.argsort(-a, axis=1, kind="stable")[:, :k]
    best_b = np.argsort(-b, axis=1, kind="stable")[:, :k]
    shared = np.array([len(set(x) & set(y)) for x, y in zip(best_a, best_b, strict=True)])
    difference = np.abs(a - b)
    return {
        "rows": len(a),
        "top1": float(np.mean(best_a[:, 0] == best_b[:, 0])),
        "top5_overlap": float(np.mean(shared / k)),
        "top5_same": float(np.mean(shared == k)),
        "mean_abs_diff": float(difference.mean()),
        "max_abs_diff": float(difference.max()),
    }
