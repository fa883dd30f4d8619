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
    read_image_file,
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


def test_image_files_are_read_by_path_and_by_file_uri(tmp_path, china_bytes):
    folder = tmp_path / "sub dir"
    folder.mkdir()
    target = folder / "a b%20.jpg"  # binaryFile's paths are not percent-encoded
    target.write_bytes(china_bytes)
    for location in (str(target), f"file:{target}", f"file://{target}"):
        assert read_image_file(location) == china_bytes, location
    with pytest.raises(InvalidImageError, match="cannot read image file: No such file"):
        read_image_file(f"file:{folder}/missing.jpg")
    with pytest.raises(InvalidImageError, match="cannot read image file: Is a directory"):
        read_image_file(str(folder))
    # Other file systems go to the reader given for them, and its errors become invalid images.
    assert read_image_file("gs://bucket/x.jpg", remote=lambda url: url.encode()) == (
        b"gs://bucket/x.jpg"
    )
    with pytest.raises(InvalidImageError, match="not a local path or file: URI"):
        read_image_file("s3a://bucket/x.jpg")

    def failing(url):
        raise RuntimeError("Object gs://bucket/x.jpg does not exist\ndetails")

    with pytest.raises(InvalidImageError, match=r"cannot read image file: Object .* exist$"):
        read_image_file("gs://bucket/x.jpg", remote=failing)


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


# -- decoding at a reduced scale ---------------------------------------------------------------


def _jpeg(image: Image.Image, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, **save)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo(china_bytes) -> Image.Image:
    """A 2560x1708 photograph (china.jpg enlarged 4x), like a camera's."""
    china = Image.open(io.BytesIO(china_bytes)).convert("RGB")
    return china.resize((china.width * 4, china.height * 4), Image.Resampling.BICUBIC)


def _decoded_size(data: bytes, size: tuple[int, int], channels: int = 3) -> tuple[int, int]:
    """The (width, height) the scaled decode of ``data`` works at, seen through Pillow."""
    image = Image.open(io.BytesIO(data))
    image.draft("L" if channels == 1 else "RGB", (size[1], size[0]))
    return image.size


@pytest.mark.parametrize(
    "size, scale",
    [((224, 224), 4), ((299, 299), 4), ((600, 600), 2), ((1200, 1200), 1), ((213, 320), 8)],
)
def test_scaled_decode_picks_the_smallest_scale_covering_the_size(photo, size, scale):
    data = _jpeg(photo)
    width, height = _decoded_size(data, size)
    assert (width, height) == (-(-photo.width // scale), -(-photo.height // scale))
    assert width >= size[1] and height >= size[0]
    pixels = decode_image(data, size, scaled=True)
    assert pixels.shape == (*size, 3)
    # At full scale the scaled decode is the full decode; below it, other pixels.
    assert np.array_equal(pixels, decode_image(data, size)) == (scale == 1)


def test_scaled_decode_is_close_to_the_full_decode_and_faster(photo):
    import time

    data = _jpeg(photo)
    exact = decode_image(data, (224, 224))
    fast = decode_image(data, (224, 224), scaled=True)
    difference = np.abs(exact.astype(np.int16) - fast.astype(np.int16))
    assert 0 < difference.mean() < 2.0  # grey levels of 255: not the same pixels, nearly
    assert np.percentile(difference, 99) <= 12

    def cost(scaled: bool) -> float:
        start = time.perf_counter()
        for _ in range(3):
            decode_image(data, (224, 224), scaled=scaled)
        return time.perf_counter() - start

    # Work, not wall time, is what the scale saves; a 2x margin under the usual 4-5x leaves room
    # for a noisy machine.
    assert min(cost(True) for _ in range(2)) * 2 < min(cost(False) for _ in range(2))


def test_scaled_decode_leaves_other_formats_and_small_images_alone(photo, china_bytes):
    small = np.asarray(photo.resize((320, 240)))
    png = _png(small)
    assert np.array_equal(decode_image(png, (60, 80), scaled=True), decode_image(png, (60, 80)))
    # Already at most twice the size asked for: decoded at full scale, the same pixels.
    jpeg = _jpeg(Image.fromarray(small))
    assert np.array_equal(
        decode_image(jpeg, (200, 200), scaled=True), decode_image(jpeg, (200, 200))
    )
    # No size: nothing to scale to.
    assert np.array_equal(decode_image(china_bytes, scaled=True), decode_image(china_bytes))


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("scaled", [False, True])
def test_exif_orientation_turns_the_photo_upright(photo, orientation, scaled):
    # A marker in the upright photo's top-left corner, then stored the way a camera held at
    # ``orientation`` stores it.
    upright = photo.crop((0, 0, 1600, 1200)).copy()
    upright.paste((255, 0, 0), (0, 0, 400, 300))
    store = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
             8: Image.Transpose.ROTATE_270}[orientation]  # fmt: skip
    stored = upright if store is None else upright.transpose(store)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _jpeg(stored, exif=exif.tobytes())
    pixels = decode_image(data, (60, 80), scaled=scaled)  # height 60, width 80: landscape
    assert pixels.shape == (60, 80, 3)
    corner, rest = pixels[:10, :15].astype(int), pixels[30:, 40:].astype(int)
    assert corner[..., 0].mean() > 200 and corner[..., 1].mean() < 60  # red marker top-left
    assert np.abs(rest[..., 0] - rest[..., 1]).mean() < 100  # no marker elsewhere


def test_scaled_decode_of_grayscale_and_cmyk_jpegs(photo):
    gray = _jpeg(photo.convert("L"))
    for channels in (1, 3):
        fast = decode_image(gray, (112, 112), channels, scaled=True)
        exact = decode_image(gray, (112, 112), channels)
        assert fast.shape == exact.shape == (112, 112, channels)
        assert np.abs(fast.astype(int) - exact).mean() < 2.0
    colour = _jpeg(photo)
    fast = decode_image(colour, (112, 112), 1, scaled=True)  # luminance decoded directly
    exact = decode_image(colour, (112, 112), 1)
    assert np.abs(fast.astype(int) - exact).mean() < 2.0
    cmyk = io.BytesIO()
    photo.convert("CMYK").save(cmyk, format="JPEG", quality=90)
    fast = decode_image(cmyk.getvalue(), (112, 112), scaled=True)
    exact = decode_image(cmyk.getvalue(), (112, 112))
    assert fast.shape == (112, 112, 3)
    assert np.abs(fast.astype(int) - exact).mean() < 2.0
