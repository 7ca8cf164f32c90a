"""MNIST sources: local folders (any layout), the verified download against a local
HTTP server, the auto fallbacks, and the embedded split."""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import shutil
import socket
import threading

import numpy as np
import pytest

from digitlab.data.sources import (
    FILES,
    download_mnist,
    load_embedded,
    load_local,
    load_mnist,
    write_mnist_folder,
)
from digitlab.errors import UserError


def tiny_set(n: int, seed: int):
    """``n`` random 28x28 'digits' with balanced labels."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10


@pytest.fixture
def tiny_folder(tmp_path):
    return write_mnist_folder(tmp_path / "tiny", tiny_set(120, 0), tiny_set(30, 1))


@pytest.fixture
def server(tmp_path, tiny_folder):
    """127.0.0.1 server: /good/ has the files, /bad/ corrupt copies, /missing/ nothing."""
    site = tmp_path / "site"
    shutil.copytree(tiny_folder, site / "good")
    (site / "bad").mkdir()
    (site / "missing").mkdir()
    for path in (site / "good").iterdir():
        (site / "bad" / path.name).write_bytes(path.read_bytes()[:-1] + b"x")
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):  # keep the test output clean
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in (site / "good").iterdir()}
    yield base, md5, requests
    httpd.shutdown()
    httpd.server_close()


def test_download_from_a_good_mirror_then_load(project_root, server):
    base, md5, _ = server
    splits = load_mnist("download", seed=0, mirrors=[f"{base}/good/"], md5=md5, progress=False)
    assert splits.source == "download"
    assert splits.summary()["n_train"] + splits.summary()["n_val"] == 120
    assert len(splits.test_labels) == 30
    assert sorted(p.name for p in (project_root / "data/raw/mnist").iterdir()) == sorted(md5)


def test_a_download_reads_the_verified_files_not_a_raw_copy_beside_them(tmp_path, server):
    base, md5, _ = server
    stale = write_mnist_folder(tmp_path / "dl", tiny_set(60, 7), tiny_set(20, 8), compress=False)
    splits = load_mnist("download", root=stale, mirrors=[f"{base}/good/"], md5=md5,
                        progress=False)
    assert np.array_equal(splits.test_images, tiny_set(30, 1)[0])  # what the server has


def test_404_moves_on_to_the_next_mirror(tmp_path, server):
    base, md5, requests = server
    dest = download_mnist(tmp_path / "dl", mirrors=[f"{base}/missing/", f"{base}/good/"],
                          md5=md5, progress=False)
    assert all(hashlib.md5((dest / n).read_bytes()).hexdigest() == h for n, h in md5.items())
    assert sum(r.startswith("/missing/") for r in requests) == 4


def test_bad_checksum_is_rejected_and_the_next_mirror_used(tmp_path, server):
    base, md5, requests = server
    dest = download_mnist(tmp_path / "dl", mirrors=[f"{base}/bad/", f"{base}/good/"],
                          md5=md5, progress=False)
    assert all(hashlib.md5((dest / n).read_bytes()).hexdigest() == h for n, h in md5.items())
    # Each corrupt copy was fetched (then refused), not skipped.
    assert sorted(r for r in requests if r.startswith("/bad/")) == sorted(f"/bad/{n}" for n in md5)


def test_a_served_file_unlike_the_published_md5_is_refused_by_default(tmp_path, server):
    """Without an md5 table of its own, the download checks the built-in one: the tiny
    files served here are valid IDX files, but not the official ones."""
    base, _, requests = server
    with pytest.raises(UserError, match=r"could not download train-images-idx3-ubyte.gz "
                                        r"with a valid md5 .*/good/train-images.*md5 mismatch"):
        download_mnist(tmp_path / "dl", mirrors=[f"{base}/good/"], progress=False)
    assert requests == ["/good/train-images-idx3-ubyte.gz"]
    assert not any((tmp_path / "dl").iterdir())  # neither the file nor a temporary copy


def test_all_mirrors_failing_is_one_clear_error_and_leaves_no_file(tmp_path, server):
    base, md5, _ = server
    with pytest.raises(UserError, match=r"could not download .*-ubyte.gz .*md5 mismatch"):
        download_mnist(tmp_path / "dl", mirrors=[f"{base}/missing/", f"{base}/bad/"],
                       md5=md5, progress=False)
    assert not any((tmp_path / "dl").glob("*ubyte*"))


def test_verified_files_are_not_downloaded_again(tmp_path, server):
    base, md5, requests = server
    download_mnist(tmp_path / "dl", mirrors=[f"{base}/good/"], md5=md5, progress=False)
    count = len(requests)
    download_mnist(tmp_path / "dl", mirrors=[f"{base}/good/"], md5=md5, progress=False)
    assert len(requests) == count


@pytest.mark.parametrize("layout", [".", "MNIST/raw"])
@pytest.mark.parametrize("compress", [True, False])
def test_local_folder_raw_gz_and_torchvision_layout(tmp_path, layout, compress):
    train, test = tiny_set(120, 0), tiny_set(30, 1)
    write_mnist_folder(tmp_path / "root" / layout, train, test, compress=compress)
    splits = load_mnist("local", root=tmp_path / "root", seed=3)
    assert splits.source == "local"
    assert np.array_equal(splits.test_images, test[0])
    # validation is 1/12 of the training set, stratified, and disjoint from train
    assert len(splits.val_labels) == 10 and sorted(splits.val_labels) == list(range(10))
    together = np.concatenate([splits.train_images, splits.val_images]).reshape(120, -1)
    assert len(np.unique(together, axis=0)) == 120


@pytest.mark.parametrize("own_folder", [False, True])
def test_the_dotted_spelling_of_an_unzipped_kaggle_copy_loads(tmp_path, own_folder):
    # train-images.idx3-ubyte, or train-images.idx3-ubyte/train-images.idx3-ubyte
    train, test = tiny_set(120, 0), tiny_set(30, 1)
    folder = write_mnist_folder(tmp_path / "kaggle", train, test, compress=False)
    for name in FILES.values():
        dotted = name.replace("-idx", ".idx")
        target = folder / dotted / dotted if own_folder else folder / dotted
        target.parent.mkdir(exist_ok=True)
        (folder / name).rename(target)
    splits = load_mnist("local", root=folder)
    assert np.array_equal(splits.test_images, test[0])
    assert np.array_equal(splits.test_labels, test[1])


def test_a_folder_without_every_file_is_told_which_are_missing(tmp_path):
    folder = write_mnist_folder(tmp_path / "partial", tiny_set(120, 0), tiny_set(30, 1))
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match=r"\(missing: t10k-labels-idx1-ubyte\[\.gz\]\)"):
        load_local(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"\(none of train-images-idx3-ubyte\[\.gz\], "
                                        r"train-labels"):
        load_local(tmp_path / "empty")


def test_auto_prefers_local_then_download_then_embedded(project_root, tiny_folder, server):
    base, md5, _ = server
    assert load_mnist("auto", root=tiny_folder).source == "local"
    got = load_mnist("auto", mirrors=[f"{base}/good/"], md5=md5, progress=False)
    assert got.source == "download"
    fallback = load_mnist("auto", root=project_root / "empty", mirrors=[f"{base}/missing/"],
                          md5=md5, progress=False)
    assert fallback.source == "embedded" and len(fallback.test_labels) == 1000


def closed_port_url() -> str:
    """A 127.0.0.1 address where nothing listens: a connection there is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_auto_offline_says_so_in_one_warning_line(project_root, server, caplog, capfd):
    base, md5, _ = server
    caplog.set_level(logging.INFO, logger="digitlab")
    mirrors = [closed_port_url(), f"{base}/missing/", closed_port_url()]
    splits = load_mnist("auto", root=project_root / "empty", mirrors=mirrors, md5=md5,
                        progress=False)
    assert splits.source == "embedded"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "using the embedded 5,000 digits" in warnings[0] and "--verbose" in warnings[0]
    shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not any("127.0.0.1" in line for line in shown), shown  # no per-mirror line
    assert "127.0.0.1" not in capfd.readouterr().err  # nor pooch's "Downloading data from"


def test_verbose_logging_keeps_each_mirrors_error(project_root, server, caplog):
    base, md5, _ = server
    caplog.set_level(logging.DEBUG, logger="digitlab")
    dead = closed_port_url()
    load_mnist("auto", root=project_root / "empty", mirrors=[dead, f"{base}/missing/"], md5=md5,
               progress=False)
    details = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(line.startswith(f"MNIST download failed: {dead}") for line in details)
    assert any("/missing/" in line and "404" in line for line in details)


def test_an_explicit_download_names_every_mirrors_failure(project_root, server):
    base, md5, _ = server
    dead = closed_port_url()
    with pytest.raises(UserError, match=rf"from any mirror \({dead}.*; {base}/missing/.*404"):
        load_mnist("download", root=project_root / "dl", mirrors=[dead, f"{base}/missing/"],
                   md5=md5, progress=False)


def test_a_local_folder_with_a_label_outside_0_9_is_refused(tmp_path):
    images, labels = tiny_set(120, 0)
    labels = labels.copy()
    labels[7] = 12
    folder = write_mnist_folder(tmp_path / "odd", (images, labels), tiny_set(30, 1))
    with pytest.raises(UserError, match="train-labels-idx1-ubyte.gz holds label 12 at item 7"):
        load_mnist("local", root=folder)


def test_missing_local_folder_names_the_files(tmp_path):
    with pytest.raises(UserError, match=rf"{FILES['train_images']}\[.gz\]"):
        load_mnist("local", root=tmp_path)


def test_unknown_source():
    with pytest.raises(UserError, match="choose one of auto, local, download, embedded"):
        load_mnist("kaggle")


def test_embedded_split_is_stratified_seeded_and_disjoint():
    a, b, c = load_embedded(seed=0), load_embedded(seed=0), load_embedded(seed=1)
    assert (len(a.train_labels), len(a.val_labels), len(a.test_labels)) == (3500, 500, 1000)
    assert np.array_equal(a.test_images, b.test_images)
    assert not np.array_equal(a.test_labels, c.test_labels)
    everything = np.concatenate([a.train_labels, a.val_labels, a.test_labels])
    for labels in (a.val_labels, a.test_labels):  # class shares match the whole set
        share = np.bincount(labels, minlength=10) / len(labels)
        assert np.abs(share - np.bincount(everything) / len(everything)).max() < 0.01
    keys = [{image.tobytes() for image in part}
            for part in (a.train_images, a.val_images, a.test_images)]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])


def test_a_local_training_set_too_small_to_stratify_is_refused_clearly(tmp_path):
    images, labels = np.zeros((21, 28, 28), np.uint8), np.array([0] * 20 + [1])
    write_mnist_folder(tmp_path, (images, labels), (images[:3], labels[:3]))
    with pytest.raises(UserError, match=f"training set in {tmp_path} has too few rows per digit"):
        load_local(tmp_path)
