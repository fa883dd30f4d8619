"""sparktf.datasets: the IDX reader, MNIST from IDX files, and the bundled digits."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from sparktf.datasets import load_digits, load_mnist, read_idx

_TYPE_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` as IDX: magic (0, 0, type, ndim), then big-endian sizes and data."""
    code = _TYPE_CODES[array.dtype.str[1:]]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array: np.ndarray, gzipped: bool = False) -> str:
    data = idx_bytes(array)
    if gzipped:
        data = gzip.compress(data)
    path.write_bytes(data)
    return str(path)


# -- read_idx ------------------------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_round_trips_uint8_images(tmp_path, gzipped):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    name = "images.idx3-ubyte" + (".gz" if gzipped else "")
    got = read_idx(write_idx(tmp_path / name, images, gzipped))
    assert got.shape == (2, 3, 4)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, images)


@pytest.mark.parametrize(
    "dtype", [np.int8, np.int16, np.int32, np.float32, np.float64], ids=lambda d: d.__name__
)
def test_read_idx_multi_byte_types_in_native_byte_order(tmp_path, dtype):
    values = np.array([[-3, 2], [1000 if dtype != np.int8 else 100, -7]], dtype=dtype)
    got = read_idx(write_idx(tmp_path / "values.idx", values))
    np.testing.assert_array_equal(got, values)
    assert got.dtype == np.dtype(dtype)  # native order, not big-endian
    assert got.flags.writeable


def test_read_idx_recognizes_gzip_by_content_not_name(tmp_path):
    labels = np.array([5, 0, 4, 1], dtype=np.uint8)
    path = write_idx(tmp_path / "labels-without-suffix", labels, gzipped=True)
    np.testing.assert_array_equal(read_idx(path), labels)


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "not-idx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n....")
    with pytest.raises(ValueError, match=r"not-idx is not an IDX file \(bad magic number"):
        read_idx(str(path))


def test_read_idx_empty_file(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="is not an IDX file"):
        read_idx(str(path))


def test_read_idx_unknown_element_type(tmp_path):
    path = tmp_path / "odd.idx"
    path.write_bytes(bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="unknown IDX element type 0x07"):
        read_idx(str(path))


def test_read_idx_truncated_data(tmp_path):
    data = idx_bytes(np.zeros((3, 2, 2), dtype=np.uint8))
    path = tmp_path / "short.idx"
    path.write_bytes(data[:-5])
    with pytest.raises(
        ValueError,
        match=r"promises 12 values of shape \(3, 2, 2\) \(12 bytes of data\), the file holds 7",
    ):
        read_idx(str(path))


def test_read_idx_partial_element(tmp_path):
    data = idx_bytes(np.zeros(2, dtype=np.int32))
    path = tmp_path / "partial.idx"
    path.write_bytes(data[:-1])  # 7 bytes: not a whole number of int32 values
    with pytest.raises(ValueError, match=r"\(8 bytes of data\), the file holds 7 bytes"):
        read_idx(str(path))


def test_read_idx_truncated_header(tmp_path):
    data = idx_bytes(np.zeros((2, 2, 2), dtype=np.uint8))
    path = tmp_path / "header.idx"
    path.write_bytes(data[:9])  # magic + 1 of 3 sizes + 1 byte
    with pytest.raises(ValueError, match="truncated IDX header: 3 dimension sizes announced"):
        read_idx(str(path))


def test_read_idx_truncated_gzip(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    path = tmp_path / "cut.idx.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated gzip file"):
        read_idx(str(path))


# -- load_mnist ------------------------------------------------------------------------------------


def fake_mnist(directory, n_train=6, n_test=3, side=4):
    """A tiny MNIST folder: train files gzipped, test files plain with the '.idx' spelling."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n, gzipped, stems in (
        ("train", n_train, True, ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")),
        ("test", n_test, False, ("t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte")),
    ):
        images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        suffix = ".gz" if gzipped else ""
        write_idx(directory / (stems[0] + suffix), images, gzipped)
        write_idx(directory / (stems[1] + suffix), labels, gzipped)
        arrays[split] = (images, labels)
    return arrays


@pytest.mark.parametrize("split", ["train", "test"])
def test_load_mnist_reads_fake_folder(spark, tmp_path, split):
    arrays = fake_mnist(tmp_path)
    images, labels = arrays[split]
    df = load_mnist(spark, str(tmp_path), split=split)
    assert df.columns == ["image_id", "features", "label"]
    rows = sorted(df.collect(), key=lambda r: r.image_id)
    assert [r.image_id for r in rows] == list(range(len(labels)))
    assert [r.label for r in rows] == [float(v) for v in labels]
    got = np.stack([r.features.toArray() for r in rows])
    np.testing.assert_array_equal(got, images.reshape(len(images), -1).astype(np.float64))


def test_load_mnist_bad_split(spark, tmp_path):
    with pytest.raises(ValueError, match=r"split must be 'train' or 'test'. Got 'valid' instead."):
        load_mnist(spark, str(tmp_path), split="valid")


def test_load_mnist_missing_directory(spark, tmp_path):
    with pytest.raises(FileNotFoundError, match="MNIST directory not found"):
        load_mnist(spark, str(tmp_path / "nowhere"))


def test_load_mnist_missing_file(spark, tmp_path):
    fake_mnist(tmp_path)
    (tmp_path / "t10k-labels.idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"MNIST file t10k-labels-idx1-ubyte\[.gz\] not"):
        load_mnist(spark, str(tmp_path), split="test")


def test_load_mnist_counts_disagree(spark, tmp_path):
    fake_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels.idx1-ubyte", np.zeros(2, dtype=np.uint8))
    with pytest.raises(ValueError, match="MNIST test files disagree: 3 images but 2 labels"):
        load_mnist(spark, str(tmp_path), split="test")


# -- load_digits -----------------------------------------------------------------------------------


def test_load_digits_rows_and_schema(spark):
    df = load_digits(spark, num_partitions=3)
    assert df.rdd.getNumPartitions() == 3
    schema = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    assert schema == {"image_id": "bigint", "features": "vector", "label": "double"}
    stats = df.selectExpr(
        "count(*) AS n",
        "count(DISTINCT image_id) AS ids",
        "min(label) AS lo",
        "max(label) AS hi",
    ).first()
    assert (stats.n, stats.ids, stats.lo, stats.hi) == (1797, 1797, 0.0, 9.0)
    first = df.orderBy("image_id").first()
    assert first.features.size == 64
    pixels = first.features.toArray()
    assert pixels.min() >= 0.0 and pixels.max() <= 16.0
