"""Images for :class:`~sparktf.transformer.TFGraphTransformer`: bytes or structs in, pixels out.

Everything here runs on executors inside the transformer's pandas UDF and uses Pillow and NumPy
only (no TensorFlow), so it is cheap to import and easy to test on its own:

* :func:`read_image_file` reads the bytes of an image file named by a path or a ``file:`` URI
  (a string column of paths, read by the workers themselves);
* :func:`decode_image` turns encoded bytes (JPEG, PNG, GIF, BMP, ... as read by
  ``spark.read.format("binaryFile")``) into a ``height x width x channels`` uint8 array in RGB
  order, turned upright by its EXIF orientation and resized to the model's input size; with
  ``scaled=True`` a JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale that still covers
  that size (libjpeg's DCT scaling, several times faster on photos) before the resize;
* :func:`spark_image_to_array` does the same for a row of Spark's image data source
  (``spark.read.format("image")``), whose pixels are stored in OpenCV's BGR(A) order;
* :func:`prepare_pixels` applies the model's preprocessing: channel order and scaling;
* :func:`top_k` and :func:`parse_labels` turn a score matrix into ``(label, score)`` pairs.

A bad image raises :class:`InvalidImageError`; the transformer decides, through its
``handleInvalid`` Param, whether that fails the job, drops the row or keeps it with null outputs.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from sparktf.errors import InvalidImageError

__all__ = [
    "CHANNEL_ORDERS",
    "IMAGE_FIELDS",
    "IMAGE_SCALINGS",
    "OPENCV_MODES",
    "SCALINGS",
    "InvalidImageError",
    "decode_image",
    "parse_labels",
    "prepare_pixels",
    "read_image_file",
    "spark_image_to_array",
    "top_k",
]

#: Pixel scalings a model may expect: 0..255 as they are, [0, 1], or [-1, 1].
SCALINGS = ("none", "unit", "signed")
#: Scalings TFClassifier's network applies to an image column's 0..255 pixels (its
#: ``imageScaling``, :mod:`sparktf.training._image_layers`).
IMAGE_SCALINGS = ("standardize", "unit", "signed", "imagenet", "caffe", "none")
#: Channel orders a model may expect for 3-channel input.
CHANNEL_ORDERS = ("rgb", "bgr")
#: Fields of Spark's image data source struct (``pyspark.ml.image.ImageSchema``).
IMAGE_FIELDS = ("origin", "height", "width", "nChannels", "mode", "data")

#: OpenCV type codes of Spark's image data source (8-bit unsigned) -> number of channels.
OPENCV_MODES = {0: 1, 16: 3, 24: 4}


def read_image_file(location: str, remote: Any = None) -> bytes:
    """The bytes of the file at ``location``: a local path, or a ``file:`` URI as the
    ``binaryFile`` data source writes its ``path`` column (``file:/photos/a b.jpg``, not
    percent-encoded). A URI of another scheme (``gs://``, ``hdfs://``, ...) is read by
    ``remote(location)``, when given. Raises :class:`InvalidImageError` when the file cannot be
    read."""
    local = _local_path(location)
    if local is None and remote is None:
        raise InvalidImageError(f"cannot read {location!r}: not a local path or file: URI")
    try:
        if local is None:
            return remote(location)
        with open(local, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise InvalidImageError(f"cannot read image file: {exc.strerror or exc}") from None
    except Exception as exc:  # the remote reader's own errors (e.g. TensorFlow's NotFoundError)
        text = str(exc).strip().splitlines()
        raise InvalidImageError(
            f"cannot read image file: {text[0] if text else type(exc).__name__}"
        ) from None


def _local_path(location: str) -> str | None:
    """The local path a location names, or None for a URI of another scheme."""
    if location.startswith("file:"):
        rest = location[len("file:") :]
        if rest.startswith("//"):  # file:///x, or file://host/x
            rest = rest[2:]
            rest = rest[rest.find("/") :] if "/" in rest else "/"
        return rest
    scheme, sep, _ = location.partition("://")
    if sep and scheme and scheme[0].isalpha() and all(c.isalnum() or c in "+.-" for c in scheme):
        return None
    return location


def _pil():
    from PIL import Image

    return Image


def _to_channels(image: Any, channels: int) -> Any:
    if channels == 1:
        return image.convert("L")
    if channels == 3:
        return image.convert("RGB")
    raise InvalidImageError(f"Images can be converted to 1 or 3 channels. Got {channels} instead.")


#: EXIF orientation tag (0x0112) -> the transpose that turns the stored pixels upright.
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
            6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}  # fmt: skip


def _orientation(image: Any) -> int:
    """The EXIF orientation of an opened image (1, upright, when absent or unreadable)."""
    try:
        value = image.getexif().get(0x0112, 1)
        return value if value in _UPRIGHT else 1
    except Exception:  # a damaged EXIF block is no reason to reject the pixels
        return 1


def _stored_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """Pillow's ``(width, height)`` of the stored pixels that turn into an upright image of
    ``size`` = (height, width): orientations 5 to 8 swap width and height."""
    height, width = size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _finish(
    image: Any, size: tuple[int, int] | None, channels: int, orientation: int = 1
) -> np.ndarray:
    image = _to_channels(image, channels)
    if size is not None:
        stored = _stored_size(size, orientation)
        if image.size != stored:  # resize before turning: fewer pixels to move
            image = image.resize(stored, _pil().Resampling.BILINEAR)
    if orientation != 1:
        image = image.transpose(getattr(_pil().Transpose, _UPRIGHT[orientation]))
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def decode_image(
    data: bytes | bytearray | memoryview,
    size: tuple[int, int] | None = None,
    channels: int = 3,
    scaled: bool = False,
) -> np.ndarray:
    """Decode encoded image bytes into a ``height x width x channels`` uint8 array (RGB order).

    The image is turned upright by its EXIF orientation tag, as photo viewers show it. ``size``
    is ``(height, width)`` of the upright image; the image is resized with bilinear filtering
    when it differs. ``channels`` is 3 (RGB) or 1 (grayscale). With ``scaled`` and a ``size``,
    a JPEG is decoded at the smallest of 1/8, 1/4, 1/2 or full scale whose width and height are
    still at least ``size`` (a 4000x3000 photo for a 224x224 model is decoded at 500x375), then
    resized: the result differs from a full decode by a fraction of a grey level on average, at
    a fraction of the cost. Other formats decode as without ``scaled``. Raises
    :class:`InvalidImageError` when the bytes are not an image Pillow can read.

    >>> import io
    >>> from PIL import Image
    >>> buffer = io.BytesIO()
    >>> Image.new("RGB", (4, 2), (255, 0, 0)).save(buffer, format="PNG")
    >>> decode_image(buffer.getvalue(), size=(3, 3)).shape
    (3, 3, 3)
    >>> decode_image(b"not an image")
    Traceback (most recent call last):
    ...
    sparktf.errors.InvalidImageError: cannot decode image: cannot identify image file (12 bytes)
    """
    if data is None:
        raise InvalidImageError("the image is null")
    data = bytes(data)
    Image = _pil()
    try:
        image = Image.open(io.BytesIO(data))
        orientation = _orientation(image)
        if scaled and size is not None and image.format == "JPEG":
            image.draft("L" if channels == 1 else "RGB", _stored_size(size, orientation))
        image.load()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ...
        reason = str(exc).split(" <")[0] if str(exc) else type(exc).__name__
        if reason.startswith("cannot identify image file"):
            reason = "cannot identify image file"
        raise InvalidImageError(f"cannot decode image: {reason} ({len(data)} bytes)") from None
    return _finish(image, size, channels, orientation)


def spark_image_to_array(
    row: Any, size: tuple[int, int] | None = None, channels: int = 3
) -> np.ndarray:
    """Convert one row of Spark's image struct (BGR pixels) to a uint8 array in RGB order.

    ``row`` is a mapping or Row with the fields of :data:`IMAGE_FIELDS`. Raises
    :class:`InvalidImageError` for a null row, an unsupported mode, or a data length that does not
    match ``height * width * nChannels`` (Spark stores undecodable files that way when
    ``dropInvalid`` is false: height and width -1, empty data).

    >>> row = {"height": 1, "width": 2, "nChannels": 3, "mode": 16, "data": bytes(range(1, 7))}
    >>> spark_image_to_array(row).tolist()
    [[[3, 2, 1], [6, 5, 4]]]
    """
    if row is None:
        raise InvalidImageError("the image is null")
    try:
        height, width = int(row["height"]), int(row["width"])
        n_channels, mode, data = int(row["nChannels"]), int(row["mode"]), row["data"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidImageError(f"not a Spark image struct: {exc}") from None
    if data is None or height <= 0 or width <= 0:
        raise InvalidImageError(
            f"the image struct holds no pixels (height={height}, width={width})"
        )
    if OPENCV_MODES.get(mode) != n_channels:
        raise InvalidImageError(
            f"unsupported image mode {mode} with {n_channels} channels (8-bit images with "
            "1, 3 or 4 channels are supported)"
        )
    data = bytes(data)
    if len(data) != height * width * n_channels:
        raise InvalidImageError(
            f"the image struct holds {len(data)} bytes, expected height*width*nChannels = "
            f"{height * width * n_channels}"
        )
    pixels = np.frombuffer(data, dtype=np.uint8).reshape(height, width, n_channels)
    Image = _pil()
    if n_channels == 1:
        image = Image.fromarray(pixels[:, :, 0], mode="L")
    else:
        image = Image.fromarray(np.ascontiguousarray(pixels[:, :, 2::-1]), mode="RGB")
    return _finish(image, size, channels)


def prepare_pixels(
    pixels: np.ndarray, scaling: str = "none", channel_order: str = "rgb", dtype: Any = np.float32
) -> np.ndarray:
    """Apply a model's preprocessing to uint8 RGB pixels (any leading batch dimensions).

    ``scaling`` is one of :data:`SCALINGS`: ``"none"`` keeps 0..255, ``"unit"`` maps to
    [0, 1], ``"signed"`` to [-1, 1]. ``channel_order`` ``"bgr"`` reverses 3-channel pixels.

    >>> prepare_pixels(np.array([[0, 51, 255]], dtype=np.uint8), "unit", "bgr", np.float64)
    array([[1. , 0.2, 0. ]])
    """
    if channel_order.lower() == "bgr" and pixels.shape[-1] == 3:
        pixels = pixels[..., ::-1]
    dtype = np.dtype(dtype)
    scaling = scaling.lower()
    if scaling == "none":
        return pixels.astype(dtype)
    values = pixels.astype(np.float32)
    if scaling == "unit":
        values = values / np.float32(255.0)
    elif scaling == "signed":
        values = values / np.float32(127.5) - np.float32(1.0)
    else:
        raise ValueError(f"scaling must be one of {SCALINGS}. Got {scaling!r} instead.")
    return values.astype(dtype)


def top_k(scores: np.ndarray, labels: Sequence[str], k: int) -> list[list[dict[str, Any]]]:
    """The ``k`` highest scores of each row with their labels, highest first.

    ``scores`` is ``(rows, classes)``; ties keep the lower class index first.

    >>> top_k(np.array([[0.1, 0.7, 0.2]]), ["cat", "dog", "fox"], 2)
    [[{'label': 'dog', 'score': 0.7}, {'label': 'fox', 'score': 0.2}]]
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise ValueError(
            f"top-K needs one score per label ({len(labels)} labels). Got scores of shape "
            f"{list(scores.shape)} instead."
        )
    k = min(int(k), scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [
        [{"label": labels[j], "score": float(row[j])} for j in idx]
        for row, idx in zip(scores, order, strict=True)
    ]


def parse_labels(text: str) -> list[str]:
    """Class names from a labels file: one name per line, surrounding blanks and empty lines
    at the end removed.

    >>> parse_labels("tench\\ngoldfish\\n\\n")
    ['tench', 'goldfish']
    """
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines
