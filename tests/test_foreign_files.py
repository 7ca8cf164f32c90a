"""Files from elsewhere: a damaged, foreign or hostile IDX, .npy, checkpoint or value ends
in one sentence naming the file, and memory stays bounded by what the file really holds."""

from __future__ import annotations

import gzip
import io
import json
import math
import tracemalloc

import numpy as np
import pytest
import torch
from numpy.lib import format as npy_format

import digitlab.architectures  # noqa: F401  (registers every track's networks)
from digitlab.data.idx import encode_idx, read_idx
from digitlab.engine import NetworkSpec
from digitlab.engine.checkpoint import load_checkpoint, save_checkpoint
from digitlab.errors import UserError
from digitlab.noisy.npy_folder import load_npy_folder, read_array
from digitlab.repro import save_json, save_metrics

MIB = 2**20
MEMORY_BOUND = 250 * MIB
MNIST_TRAIN_HEADER = bytes.fromhex("00000803" "0000ea60" "0000001c" "0000001c")  # 60000x28x28


def one_sentence(err: pytest.ExceptionInfo, path) -> str:
    message = str(err.value)
    assert str(path) in message and message.endswith(".") and "\n" not in message
    return message


def peak_bytes(call) -> tuple[int, BaseException | None]:
    """Peak Python-allocated memory (bytes objects, NumPy arrays) while ``call`` runs."""
    tracemalloc.start()
    try:
        call()
        raised = None
    except Exception as err:  # noqa: BLE001  (returned for the test to inspect)
        raised = err
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


def gzip_of_zeros(path, header: bytes, n_mib: int):
    """``header`` then ``n_mib`` MiB of zeros, as one small gzip file: many identical gzip
    members (a valid gzip file), each 1 MiB of zeros squeezed to about a kilobyte."""
    member = gzip.compress(bytes(MIB), compresslevel=9, mtime=0)
    path.write_bytes(gzip.compress(header, mtime=0) + member * n_mib)
    return path


# --- IDX -----------------------------------------------------------------------------------

@pytest.mark.parametrize("first_two", [b"\x01\x00", b"\x00\x01", b"\x08\x03"])
@pytest.mark.parametrize("compress", [False, True])
def test_an_idx_header_without_its_two_zero_bytes_is_refused(tmp_path, first_two, compress):
    # Type byte 0x08, three dimensions and a payload of exactly the announced size: only the
    # two leading bytes are wrong, so nothing but the zero-byte check can refuse the file.
    valid = encode_idx(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))
    content = first_two + valid[2:]
    path = tmp_path / "almost-idx3-ubyte"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(UserError, match=r"is not an IDX file \(bad magic number") as err:
        read_idx(path)
    one_sentence(err, path)


def test_an_idx_gzip_bomb_is_refused_within_bounded_memory(tmp_path):
    # About 300 kB on disk that inflate to 300 MiB of zeros behind an MNIST training header
    # (47 MB of pixels): reading stops after the announced pixels and one more piece.
    path = gzip_of_zeros(tmp_path / "bomb-idx3-ubyte.gz", MNIST_TRAIN_HEADER, 300)
    assert path.stat().st_size < MIB
    peak, err = peak_bytes(lambda: read_idx(path))
    assert isinstance(err, UserError) and "unexpected bytes after the 60000 items" in str(err)
    assert str(path) in str(err)
    assert peak < MEMORY_BOUND, f"{peak / MIB:.0f} MiB"


def test_an_idx_gzip_announcing_huge_dimensions_is_refused_before_inflating(tmp_path):
    huge = bytes.fromhex("00000803") + (4_000_000_000).to_bytes(4, "big") + bytes.fromhex(
        "0000001c" "0000001c")
    path = gzip_of_zeros(tmp_path / "huge-idx3-ubyte.gz", huge, 300)
    peak, err = peak_bytes(lambda: read_idx(path))
    assert isinstance(err, UserError) and "4,000,000,000 items" in str(err)
    assert peak < 16 * MIB, f"{peak / MIB:.0f} MiB"


@pytest.mark.parametrize("compress", [False, True])
def test_idx_dimensions_whose_product_overflows_64_bits_are_one_sentence(tmp_path, compress):
    # (2^32 - 1)^3 bytes is about 2^96: it wraps around in 64-bit integers.
    header = bytes.fromhex("00000803") + bytes.fromhex("ffffffff") * 3
    content = header + bytes(100)
    path = tmp_path / "overflow-idx3-ubyte"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(UserError, match=r"announces 4,294,967,295 items .*more than") as err:
        read_idx(path)
    one_sentence(err, path)


def test_a_small_idx_gzip_announcing_more_than_deflate_can_hold_is_truncated(tmp_path):
    path = tmp_path / "cut-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(MNIST_TRAIN_HEADER + bytes(1000)))  # 47 MB announced
    with pytest.raises(UserError, match=r"truncated .*more than a gzip file of \d+ bytes") as err:
        read_idx(path)
    one_sentence(err, path)


def test_a_complete_gzip_of_a_short_idx_payload_is_truncated_not_damaged(tmp_path):
    valid = encode_idx(np.zeros((10, 28, 28), dtype=np.uint8))
    path = tmp_path / "short-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(valid[:-784], mtime=0))  # gzip intact, one image missing
    with pytest.raises(UserError, match=r"is truncated: .*7840 bytes\) but only 7056 bytes"):
        read_idx(path)


def test_big_endian_idx_values_are_read_in_native_order(tmp_path):
    # 1.5 as a big-endian float32 is 3f c0 00 00; -2 as a big-endian int16 is ff fe.
    path = tmp_path / "floats-idx1"
    path.write_bytes(bytes.fromhex("00000d01" "00000002" "3fc00000" "c0000000"))
    np.testing.assert_array_equal(read_idx(path), np.array([1.5, -2.0], dtype=np.float32))
    path.write_bytes(bytes.fromhex("00000b01" "00000001" "fffe"))
    assert read_idx(path).tolist() == [-2]


# --- .npy files of a noisy folder ------------------------------------------------------------

def npy_bytes(shape: tuple[int, ...], dtype: str, data: bytes) -> bytes:
    """A .npy file whose header announces ``shape`` and ``dtype``, followed by ``data``."""
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    out = io.BytesIO()
    npy_format.write_array_header_1_0(out, header)
    return out.getvalue() + data


def small_folder(folder):
    folder.mkdir()
    labels = np.arange(20) % 10
    for split, n in (("train", 20), ("test", 10)):
        np.save(folder / f"{split}_images.npy", np.zeros((n, 28, 28), dtype=np.uint8))
        np.save(folder / f"{split}_labels.npy", labels[:n])
    return folder


def test_an_npy_header_announcing_a_huge_shape_is_refused_before_loading(tmp_path):
    folder = small_folder(tmp_path / "mine")
    path = folder / "train_images.npy"
    path.write_bytes(npy_bytes((1_000_000, 1_000_000), "<f8", bytes(64)))
    peak, err = peak_bytes(lambda: load_npy_folder(folder))
    assert isinstance(err, UserError), repr(err)
    assert "announces an array of shape (1000000, 1000000)" in str(err)
    assert "8,000,000,000,000 bytes" in str(err) and "holds 64 bytes" in str(err)
    assert str(path) in str(err) and peak < 16 * MIB


def test_a_truncated_npy_file_is_one_sentence_naming_it(tmp_path):
    path = tmp_path / "train_labels.npy"
    np.save(path, np.arange(100, dtype=np.int64))
    path.write_bytes(path.read_bytes()[:-8])  # the last label cut off
    with pytest.raises(UserError, match=r"\(100,\) \(int64, 800 bytes\) but holds 792 bytes"):
        read_array(path)


def test_npy_bytes_after_the_announced_array_are_refused(tmp_path):
    path = tmp_path / "test_labels.npy"
    path.write_bytes(npy_bytes((3,), "<i8", bytes(24) + b"junk"))
    with pytest.raises(UserError, match="holds 28 bytes of data") as err:
        read_array(path)
    one_sentence(err, path)


def test_an_npy_object_array_is_refused_from_its_header(tmp_path):
    path = tmp_path / "test_images.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="pickled object array"):
        read_array(path)


def test_an_npy_file_matching_its_header_still_loads(tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(npy_bytes((2, 2), ">i2", bytes.fromhex("0001" "0002" "fffe" "0100")))
    assert read_array(path).tolist() == [[1, 2], [-2, 256]]


# --- checkpoints -----------------------------------------------------------------------------

def checkpoint_with(tmp_path, options) -> str:
    """A real checkpoint of a small dense network whose saved options are ``options``."""
    network = NetworkSpec("dnn", {"hidden": (8,)})
    path = save_checkpoint(tmp_path / "model.pt", network.build(seed=0), network,
                           data={}, metrics={})
    payload = torch.load(path, weights_only=True)
    payload["model_kwargs"] = options
    torch.save(payload, path)
    return path


@pytest.mark.parametrize("options, problem", [
    ({"hidden": [8], "colour": "red"}, "option 'colour' is not one it takes (it takes dropout, "
                                       "hidden)"),
    ({"hidden": [10**9]}, "option hidden=1000000000 is outside 0-4096"),
    ({"hidden": [8], "dropout": -5}, "option dropout=-5 is outside 0-4096"),
    ({"hidden": [8], "dropout": float("nan")}, "option dropout=nan is not a finite number"),
    ({"hidden": [8] * 1000}, "option hidden lists 1000 values, more than 64"),
    ({"hidden": {"units": 8}}, "option hidden={'units': 8} is not a number, a true/false, "
                                 "a name or a list of numbers"),
    ([["hidden", 8]], "options [['hidden', 8]] are not named values"),
    ({"hidden": [8], "dropout": 1.5}, "its options {'hidden': [8], 'dropout': 1.5} are refused "
                                      "(dropout probability has to be between 0 and 1, but got "
                                      "1.5)"),
])
def test_checkpoint_network_options_are_checked_against_the_architecture(tmp_path, options,
                                                                           problem):
    path = checkpoint_with(tmp_path, options)
    with pytest.raises(UserError) as err:
        load_checkpoint(path)
    message = one_sentence(err, path)
    assert f"cannot rebuild its network 'dnn': {problem}; re-create it with" in message


def test_checkpoint_options_larger_than_its_weights_are_refused_before_building(tmp_path):
    path = checkpoint_with(tmp_path, {"hidden": [4096, 4096]})
    with pytest.raises(UserError) as err:
        load_checkpoint(path)
    assert "weight '1.weight' is (8, 784) in the file but (4096, 784) in the network" in \
        one_sentence(err, path)


def test_checkpoint_with_valid_options_still_loads(tmp_path):
    path = checkpoint_with(tmp_path, {"hidden": [8], "dropout": 0.25})
    model, info = load_checkpoint(path)
    assert info["network"].options == {"hidden": [8], "dropout": 0.25}
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.25]


# --- JSON ------------------------------------------------------------------------------------

def strict_json(text: str):
    """What a browser's JSON.parse or jq accepts: no NaN or Infinity tokens."""
    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_values_that_are_not_numbers_are_written_as_json_null(tmp_path):
    data = {"history": {"val_loss": [0.5, math.nan], "train_loss": [math.inf]},
            "score": np.float64(-np.inf), "kept": 0.25, "n": 3, "ok": True}
    path = save_json(data, tmp_path / "m.json")
    assert strict_json(path.read_text()) == {
        "history": {"val_loss": [0.5, None], "train_loss": [None]},
        "score": None, "kept": 0.25, "n": 3, "ok": True}
    metrics = strict_json(save_metrics(tmp_path / "metrics.json", {"loss": math.nan},
                                       seed=0).read_text())
    assert metrics["metrics"] == {"loss": None} and metrics["run"]["seed"] == 0
