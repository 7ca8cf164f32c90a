"""IDX reading and writing: valid files (gz and raw), and every way a file can be broken."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from digitlab.data.idx import encode_idx, load_idx_pair, read_idx, write_idx
from digitlab.errors import UserError


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8), rng.integers(0, 10, 7)


def test_header_matches_the_published_mnist_layout():
    # The first bytes of the real train-images file: magic 2051, then 60000, 28, 28.
    header = encode_idx(np.zeros((60000, 28, 28), dtype=np.uint8))[:16]
    assert header == bytes.fromhex("00000803" "0000ea60" "0000001c" "0000001c")
    assert encode_idx(np.zeros(3, dtype=np.uint8))[:8] == bytes.fromhex("00000801" "00000003")


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_raw_and_gzip(tmp_path, digits, name):
    path = write_idx(tmp_path / name, digits[0])
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == np.uint8 and np.array_equal(back, digits[0])


def test_gzip_is_detected_by_content_not_name(tmp_path, digits):
    path = tmp_path / "images-idx3-ubyte"  # compressed although the name says raw
    path.write_bytes(gzip.compress(encode_idx(digits[0])))
    assert np.array_equal(read_idx(path), digits[0])


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_other_idx_types_keep_their_values(tmp_path, dtype):
    values = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    back = read_idx(write_idx(tmp_path / "x.idx", values))
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, values)


def test_truncated_file_names_the_file(tmp_path, digits):
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(encode_idx(digits[0])[:-100])
    with pytest.raises(UserError, match=r"short-idx3-ubyte is truncated"):
        read_idx(path)


def test_truncated_gzip_names_the_file(tmp_path, digits):
    path = tmp_path / "short-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(encode_idx(digits[0]))[:-30])
    with pytest.raises(UserError, match=r"short-idx3-ubyte.gz is a damaged gzip file"):
        read_idx(path)


def test_truncated_header(tmp_path, digits):
    path = tmp_path / "header-idx3-ubyte"
    path.write_bytes(encode_idx(digits[0])[:10])
    with pytest.raises(UserError, match="truncated inside its header"):
        read_idx(path)


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n" + bytes(50), b"0,1,2\n3,4,5\n", b""])
def test_foreign_file_has_a_bad_magic_number(tmp_path, content):
    path = tmp_path / "picture.png"
    path.write_bytes(content)
    with pytest.raises(UserError, match=r"picture.png is not an IDX file \(bad magic"):
        read_idx(path)


def test_trailing_bytes_are_rejected(tmp_path, digits):
    path = tmp_path / "long-idx3-ubyte"
    path.write_bytes(encode_idx(digits[0]) + b"\x00" * 5)
    with pytest.raises(UserError, match="5 unexpected bytes"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_idx(tmp_path / "nope-idx3-ubyte.gz")


def test_image_label_pair(tmp_path, digits):
    images, labels = digits
    x, y = load_idx_pair(write_idx(tmp_path / "i.gz", images),
                         write_idx(tmp_path / "l", labels.astype(np.uint8)))
    assert np.array_equal(x, images) and y.dtype == np.int64 and np.array_equal(y, labels)
    with pytest.raises(UserError, match="7 images but .* 6 labels"):
        load_idx_pair(tmp_path / "i.gz", write_idx(tmp_path / "l6", labels[:6].astype(np.uint8)))
    with pytest.raises(UserError, match="does not hold uint8 images"):
        load_idx_pair(tmp_path / "l", tmp_path / "l")


@pytest.mark.parametrize("bad", [10, 11, 255])
def test_a_label_outside_0_9_is_refused_naming_the_file(tmp_path, digits, bad):
    images, labels = digits
    labels = labels.astype(np.uint8)
    labels[4] = bad
    path = write_idx(tmp_path / "labels-idx1-ubyte", labels)
    with pytest.raises(UserError, match=f"labels-idx1-ubyte holds label {bad} at item 4 .*0-9"):
        load_idx_pair(write_idx(tmp_path / "i", images), path)
