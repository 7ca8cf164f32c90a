"""scripts/serve.py: it starts and answers on 127.0.0.1, and a bad flag ends with one
sentence and exit status 2, never a traceback."""

from __future__ import annotations

import http.client
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
from digitlab.web import MAX_CLASSIFY_BODY_BYTES

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


def load_serve():
    spec = importlib.util.spec_from_file_location("serve", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serve_main():
    return load_serve().main


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


# --debug: Flask's debugger runs code sent to it, so it never listens beyond loopback.

def _refuse_to_serve(monkeypatch, flags):
    """Make every way of serving fail the test instead of blocking it."""
    import flask
    import waitress

    def serve(*args, **kwargs):
        raise AssertionError(f"serve.py started serving despite {flags}")

    for module, name in ((waitress, "serve"), (waitress, "create_server"), (flask.Flask, "run")):
        monkeypatch.setattr(module, name, serve)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com"])
def test_debug_on_a_host_other_than_loopback_is_one_sentence_and_status_2(project_root, capsys,
                                                                         monkeypatch, host):
    flags = ["--debug", "--host", host, "--port", str(free_port())]
    _refuse_to_serve(monkeypatch, flags)
    with pytest.raises(SystemExit) as stop:
        serve_main()(flags)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --debug ") and f"not {host}" in err
    assert err.count("\n") == 1 and err.rstrip().endswith(".")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_debug_on_loopback_starts_flasks_server_there(project_root, monkeypatch, host):
    import flask

    started = []
    monkeypatch.setattr(flask.Flask, "run", lambda app, **kwargs: started.append(kwargs))
    serve_main()(["--debug", "--host", host, "--port", "8123"])
    assert started == [{"host": host, "port": 8123, "debug": True}]


def test_host_checks_follow_the_interface(project_root):
    """Bound to loopback, the app refuses other names; bound to every interface it cannot
    know the names it is reached by, and refuses none."""
    serve = load_serve()
    public = serve.build_app(serve.parse_args(["--host", "0.0.0.0"])).test_client()
    assert public.get("/healthz", headers={"Host": "192.168.1.20:8000"}).status_code == 503
    local = serve.build_app(serve.parse_args(["--host", "127.0.0.2"])).test_client()
    assert local.get("/healthz", headers={"Host": "192.168.1.20:8000"}).status_code == 403
    # The address it is bound to is a name it is reached by.
    assert local.get("/healthz", headers={"Host": "127.0.0.2:8000"}).status_code == 503


# The real server, started by serve.py on a free 127.0.0.1 port, with a generator and a
# checkpoint at the default places under a temporary project root.

CHECKPOINT_DATA = "local MNIST-format folder {folder}: 60,000 training and 10,000 test images"


def write_models(root, model_dir) -> None:
    """The generator, and an untrained network whose data source names a folder by its
    absolute path, as a checkpoint trained on a local MNIST folder does."""
    import shutil

    import digitlab.architectures  # noqa: F401  (cnn2 by name)
    from digitlab.engine import NetworkSpec, save_checkpoint

    shutil.copytree(model_dir, root / "models" / "generator")
    network = NetworkSpec("cnn2")
    save_checkpoint(root / "models" / "mnist_cnn.pt", network.build(seed=0), network,
                    data={"source": "local",
                          "description": CHECKPOINT_DATA.format(folder=root / "data" / "raw"
                                                                / "mnist"),
                          "noise": None},
                    metrics={"test_accuracy": 0.5})


@pytest.fixture(scope="module")
def served(tmp_path_factory, model_dir):
    """(port, project root, server log path) of a running serve.py; stopped at the end."""
    root = tmp_path_factory.mktemp("served")
    for name in ("data", "results", "models"):
        (root / name).mkdir()
    write_models(root, model_dir)
    port, log_path = free_port(), root / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, str(SCRIPT), "--port", str(port),
                                    "--threads", "2"], env=environment(root), stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            try:
                wait_until_listening(process, port)
            except pytest.fail.Exception:
                pytest.fail(f"serve.py did not start; its log:\n{log_path.read_text()}")
            yield port, root, log_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def get(port: int, path: str, host: str | None = None, timeout: float = 10):
    """(status, body text) of GET ``path``, with ``host`` as the Host header if given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def post(port: int, path: str, body: bytes):
    """(status, parsed JSON answer) of POST ``path`` with a JSON ``body``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        conn.close()


def test_150_idle_connections_leave_room_to_answer(served):
    port = served[0]
    idle = []
    try:
        for _ in range(150):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle.append(sock)
        started = time.monotonic()
        status, body = get(port, "/healthz", timeout=1)
        assert time.monotonic() - started < 1
        assert status == 200 and json.loads(body)["status"] == "ok"
    finally:
        for sock in idle:
            sock.close()


def raw_request(port: int, head: str, body: bytes = b"") -> bytes:
    """Send ``head`` and ``body`` on one connection; return what the server says within a
    second (b"" when it closes without a word)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(head.encode("ascii") + body)
        answer = b""
        try:
            while b"\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            pytest.fail(f"no answer within a second to {head.splitlines()[0]!r}")
        return answer


@pytest.mark.parametrize("declared", [500_000_000, MAX_CLASSIFY_BODY_BYTES + 1],
                         ids=["500-MB", "one-byte-over"])
def test_a_body_declared_too_large_is_refused_from_its_headers(served, declared):
    port = served[0]
    started = time.monotonic()
    answer = raw_request(port, f"POST /classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                               "Content-Type: application/json\r\n"
                               f"Content-Length: {declared}\r\n\r\n", b'{"image": "')
    assert time.monotonic() - started < 1
    assert answer.startswith(b"HTTP/1.1 413 "), answer


def test_the_largest_body_the_app_accepts_still_reaches_it(served):
    # A body of exactly the /classify limit: the app, not the server, answers it (with
    # its own 400, as the image in it is not a PNG data URI).
    padding = MAX_CLASSIFY_BODY_BYTES - len('{"image": ""}')
    status, body = post(served[0], "/classify", b'{"image": "' + b"A" * padding + b'"}')
    assert status == 400 and body["error"].startswith("'image' must be a PNG data URI")


@pytest.mark.parametrize("route, body", [
    ("/generate", b"[" * 1000),
    ("/classify", b"[" * 1000),
    ("/classify", b"[" * 100_000),
    ("/classify", b'{"image": ' + b"[" * 1000 + b"]" * 1000 + b"}"),
    ("/generate", b'{"n_samples": ' + b"[" * 400 + b"]" * 400 + b"}"),
], ids=["generate-1000-deep", "classify-1000-deep", "classify-100000-deep",
        "classify-deep-value", "generate-deep-value"])
def test_json_of_any_depth_is_a_400_with_one_sentence(served, route, body):
    port, _, log_path = served
    logged_before = log_path.stat().st_size
    status, answer = post(port, route, body)
    assert status == 400 and answer["success"] is False
    assert answer["error"].count(". ") == 0 and answer["error"].endswith(".")
    with open(log_path) as log:
        log.seek(logged_before)
        assert "Traceback" not in log.read()


@pytest.mark.parametrize("host, status", [
    ("evil.example", 403), ("evil.example:{port}", 403), ("localhost.evil.example", 403),
    ("localhost:{port}", 200), ("127.0.0.1:{port}", 200), ("[::1]:{port}", 200),
    ("LOCALHOST", 200),
])
def test_only_loopback_host_names_are_answered(served, host, status):
    port = served[0]
    answer, body = get(port, "/healthz", host=host.format(port=port))
    assert answer == status
    # The results page (none written yet: 404) is what a rebinding page would read.
    assert get(port, "/results/", host=host.format(port=port))[0] == \
        (404 if status == 200 else 403)
    if status == 403:
        assert json.loads(body)["error"].startswith(
            "this app answers only requests addressed to localhost, 127.0.0.1, [::1]")


def test_model_info_and_errors_show_no_absolute_path(served):
    from digitlab.data.sources import load_mnist
    from digitlab.web.images import drawing_data_uri

    port, root, _ = served
    digit = load_mnist("embedded").test_images[0]
    image = json.dumps({"image": drawing_data_uri(digit)}).encode()
    status, answer = post(port, "/classify", image)
    assert status == 200
    assert answer["model"]["checkpoint"] == "mnist_cnn.pt"
    assert answer["model"]["data_description"] == \
        "local MNIST-format folder data/raw/mnist: 60,000 training and 10,000 test images"
    page_status, page = get(port, "/draw")
    missing_status, missing = get(port, "/results/")
    assert page_status == 200 and "local MNIST-format folder data/raw/mnist:" in page
    assert missing_status == 404 and "(results/index.html)" in missing
    for text in (json.dumps(answer), page, missing):
        assert str(root) not in text
