"""Image decoding, Spark image structs, preprocessing and top-K labels (no Spark needed)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from sparktf.image import (
    InvalidImageError,
    decode_image,
    parse_labels,
    prepare_pixels,
    spark_image_to_array,
    top_k,
)


@pytest.fixture(scope="module")
def china_bytes() -> bytes:
    import sklearn.datasets

    folder = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
    with open(os.path.join(folder, "china.jpg"), "rb") as handle:
        return handle.read()


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_decode_jpeg_resizes_like_pillow(china_bytes):
    pixels = decode_image(china_bytes, size=(20, 30))
    assert pixels.shape == (20, 30, 3)
    assert pixels.dtype == np.uint8
    expected = np.asarray(
        Image.open(io.BytesIO(china_bytes)).convert("RGB").resize((30, 20), Image.BILINEAR)
    )
    np.testing.assert_array_equal(pixels, expected)


def test_decode_keeps_size_when_none_and_converts_to_gray(china_bytes):
    full = decode_image(china_bytes)
    assert full.shape == (427, 640, 3)
    gray = decode_image(china_bytes, size=(8, 8), channels=1)
    assert gray.shape == (8, 8, 1)
    expected = np.asarray(
        Image.open(io.BytesIO(china_bytes)).convert("L").resize((8, 8), Image.BILINEAR)
    )
    np.testing.assert_array_equal(gray[:, :, 0], expected)


def test_decode_png_is_lossless():
    array = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 7
    np.testing.assert_array_equal(decode_image(_png(array)), array)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"definitely not an image",
            r"cannot decode image: cannot identify image file \(23 bytes\)",
        ),
        (b"", r"cannot decode image: cannot identify image file \(0 bytes\)"),
        (None, "the image is null"),
    ],
)
def test_decode_invalid_bytes_raise(data, message):
    with pytest.raises(InvalidImageError, match=message):
        decode_image(data)


def test_truncated_jpeg_raises(china_bytes):
    with pytest.raises(InvalidImageError, match="cannot decode image"):
        decode_image(china_bytes[:2000])


def _struct(pixels_bgr: np.ndarray, mode: int) -> dict:
    h, w, c = pixels_bgr.shape
    return {"origin": "x", "height": h, "width": w, "nChannels": c, "mode": mode,
            "data": pixels_bgr.tobytes()}  # fmt: skip


def test_spark_image_struct_bgr_to_rgb():
    rgb = np.random.RandomState(0).randint(0, 256, (5, 4, 3)).astype(np.uint8)
    out = spark_image_to_array(_struct(rgb[:, :, ::-1].copy(), 16))
    np.testing.assert_array_equal(out, rgb)
    resized = spark_image_to_array(_struct(rgb[:, :, ::-1].copy(), 16), size=(2, 3))
    expected = np.asarray(Image.fromarray(rgb).resize((3, 2), Image.BILINEAR))
    np.testing.assert_array_equal(resized, expected)


def test_spark_image_struct_bgra_and_gray():
    bgra = np.random.RandomState(1).randint(0, 256, (3, 3, 4)).astype(np.uint8)
    out = spark_image_to_array(_struct(bgra, 24))
    np.testing.assert_array_equal(out, bgra[:, :, 2::-1])
    gray = np.random.RandomState(2).randint(0, 256, (3, 2, 1)).astype(np.uint8)
    out = spark_image_to_array(_struct(gray, 0), channels=3)
    np.testing.assert_array_equal(out, np.repeat(gray, 3, axis=2))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"height": -1, "width": -1, "data": b""}, r"holds no pixels \(height=-1, width=-1\)"),
        ({"data": b"\0" * 5}, "holds 5 bytes, expected height\\*width\\*nChannels = 12"),
        ({"mode": 5}, "unsupported image mode 5 with 3 channels"),
    ],
)
def test_spark_image_struct_invalid(change, message):
    row = _struct(np.zeros((2, 2, 3), np.uint8), 16)
    row.update(change)
    with pytest.raises(InvalidImageError, match=message):
        spark_image_to_array(row)


def test_prepare_pixels_scalings_and_order():
    pixels = np.array([[[0, 128, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(prepare_pixels(pixels, "none"), [[[0.0, 128.0, 255.0]]])
    np.testing.assert_allclose(prepare_pixels(pixels, "unit"), [[[0.0, 128 / 255, 1.0]]])
    np.testing.assert_allclose(
        prepare_pixels(pixels, "signed"), [[[-1.0, 128 / 127.5 - 1, 1.0]]], atol=1e-6
    )
    np.testing.assert_allclose(prepare_pixels(pixels, "none", "bgr"), [[[255.0, 128.0, 0.0]]])
    assert prepare_pixels(pixels, "none", dtype=np.uint8).dtype == np.uint8
    with pytest.raises(ValueError, match="scaling must be one of"):
        prepare_pixels(pixels, "imagenet")


def test_top_k_orders_by_score_with_stable_ties():
    scores = np.array([[0.1, 0.5, 0.1, 0.3], [0.25, 0.25, 0.25, 0.25]])
    labels = ["a", "b", "c", "d"]
    result = top_k(scores, labels, 3)
    assert [[p["label"] for p in row] for row in result] == [["b", "d", "a"], ["a", "b", "c"]]
    assert [p["score"] for p in result[0]] == [0.5, 0.3, 0.1]
    assert len(top_k(scores, labels, 10)[0]) == 4
    with pytest.raises(ValueError, match=r"one score per label \(3 labels\)"):
        top_k(scores, labels[:3], 2)


def test_parse_labels():
    assert parse_labels("coral reef\n scuba diver \n\n") == ["coral reef", "scuba diver"]
    assert parse_labels("a\n\nb\n") == ["a", "", "b"]
    assert parse_labels("") == []
