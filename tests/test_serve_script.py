"""scripts/serve.py: it starts and answers on 127.0.0.1, and a bad flag ends with one
sentence and exit status 2, never a traceback."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from digitlab.data.sources import load_mnist
from digitlab.generator import pca_kde as gen
from digitlab.paths import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "serve.py"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    splits = load_mnist("embedded")
    model, _ = gen.fit_generator(splits.train_images[:200], splits.train_labels[:200],
                                 n_components=8, bandwidth=0.4, progress=False)
    folder = tmp_path_factory.mktemp("generator")
    model.save(gen.model_path(folder))
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(root) -> dict:
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DIGITLAB_ROOT": str(root)}


def wait_until_listening(process, port: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve.py ended with status {process.returncode}: "
                        f"{process.communicate()[0]}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"serve.py did not listen on port {port} within {seconds:.0f} s")


def test_the_server_starts_and_answers_the_page_and_the_stats(project_root, model_dir):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port", str(port), "--threads", "2",
         "--model-dir", str(model_dir)],
        env=environment(project_root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        wait_until_listening(process, port)
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/", timeout=10) as reply:
            assert reply.status == 200
            assert "<form" in reply.read().decode()
        with urllib.request.urlopen(f"{base}/stats", timeout=10) as reply:
            stats = json.loads(reply.read())
        assert stats["success"] is True
        assert stats["pca_components"] == 8 and stats["n_train"] == 200
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert f"serving digitlab on http://127.0.0.1:{port}/" in output
    assert "Traceback" not in output


def serve_main():
    spec = importlib.util.spec_from_file_location("serve", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize("flags, message", [
    (["--port", "-1"], "--port must be from 1 to 65535, got -1."),
    (["--port", "70000"], "--port must be from 1 to 65535, got 70000."),
    (["--threads", "0"], "--threads and --threads-per-request must be at least 1."),
    (["--checkpoint", "{tmp}/none.pt"], "--checkpoint {tmp}/none.pt does not exist; "),
    (["--model-dir", "{tmp}/empty"], "--model-dir {tmp}/empty holds no generator.npz; "),
], ids=["negative-port", "port-too-high", "no-threads", "missing-checkpoint",
        "missing-generator"])
def test_a_bad_flag_is_one_sentence_and_status_2(project_root, capsys, monkeypatch, flags,
                                                message):
    import waitress

    def serve(*args, **kwargs):  # a flag that slips through must not block the test
        raise AssertionError(f"serve.py started serving despite {flags}")

    monkeypatch.setattr(waitress, "serve", serve)
    flags = [flag.format(tmp=project_root) for flag in flags]
    with pytest.raises(SystemExit) as stop:
        serve_main()(flags)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message.format(tmp=project_root)}")
    assert err.count("\n") == 1 and err.rstrip().endswith(".")


def test_a_bad_flag_from_the_shell_exits_2_without_a_traceback(project_root):
    done = subprocess.run([sys.executable, str(SCRIPT), "--port", str(free_port()),
                           "--checkpoint", str(project_root / "none.pt")],
                          env=environment(project_root), capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --checkpoint ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr + done.stdout
