"""Load test of the web app under waitress: generating digits and reading drawn ones.

Usage:
    python benchmarks/app_load.py                     # 16 clients, 2,000 requests per route
    python benchmarks/app_load.py --clients 32 --requests 5000 --threads 8
    python benchmarks/app_load.py --quick             # a few requests; app_load_quick.json

Starts ``scripts/serve.py`` (waitress) on a free 127.0.0.1 port in a separate
process, waits for ``/healthz``, then ``--clients`` concurrent clients (each
with its own keep-alive connection) send ``--requests`` requests of
``POST /generate {"n_samples": 16}`` in total, then as many of ``POST /classify``,
each carrying a 280x280 PNG of a real handwritten digit (embedded test digits,
enlarged). Prints p50 / p99 latency, throughput and the error count per route
(any non-200 answer, ``success`` false, a wrong image count, no digit read) and
writes ``results/generator/app_load.json``: /generate under ``metrics.p50_ms``,
``metrics.p99_ms``, ``metrics.errors``, ``metrics.meets_target``, /classify under
``metrics.classify.p50_ms``, ``.p99_ms``, ``.errors``, ``.meets_target``.
Targets on 2 cores: 0 errors, and p99 at most 150 ms for /generate and 100 ms
for /classify. Needs ``make generator`` and ``make mnist``.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from digitlab import paths
from digitlab.cli import add_data_options, cli, script_parser
from digitlab.data.sources import load_mnist
from digitlab.errors import UserError
from digitlab.generator import pca_kde
from digitlab.pipeline.benchmarks import add_output_option, full_mnist_naming, output_path
from digitlab.repro import save_metrics
from digitlab.web.classifier import TRAIN_COMMAND, checkpoint_path
from digitlab.web.images import drawing_data_uri

P99_TARGET_MS = 150.0
CLASSIFY_P99_TARGET_MS = 100.0
QUICK = {"requests": 48, "warmup": 8}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def meets_target(p99_ms: float, errors: int, target_ms: float) -> bool:
    """No errors, and 99% of the requests answered within ``target_ms``."""
    return errors == 0 and p99_ms <= target_ms


def summarise(latencies_ms: np.ndarray, errors: list[str], wall: float,
              target_ms: float) -> dict:
    p50, p90, p99 = np.percentile(latencies_ms, [50, 90, 99])
    return {
        "requests": int(len(latencies_ms)), "errors": len(errors), "p50_ms": float(p50),
        "p90_ms": float(p90), "p99_ms": float(p99), "max_ms": float(latencies_ms.max()),
        "throughput_rps": len(latencies_ms) / wall, "wall_seconds": wall,
        "p99_target_ms": target_ms,
        "meets_target": meets_target(float(p99), len(errors), target_ms),
        "first_errors": errors[:5],
    }


def start_server(port: int, threads: int, model_dir: Path | None, checkpoint: Path | None,
                 log) -> subprocess.Popen:
    command = [sys.executable, str(paths.PROJECT_ROOT / "scripts" / "serve.py"),
               "--port", str(port), "--threads", str(threads)]
    if model_dir is not None:
        command += ["--model-dir", str(model_dir)]
    if checkpoint is not None:
        command += ["--checkpoint", str(checkpoint)]
    # The server's log goes to a file: an unread pipe would fill up and stall it.
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_until_healthy(server, port, log)
    except BaseException:  # no answer, no model, or Ctrl-C: never leave the server behind
        server.kill()
        server.wait(timeout=10)
        raise
    return server


def wait_until_healthy(server: subprocess.Popen, port: int, log, timeout: float = 60) -> None:
    """Wait for ``/healthz``; both the generator and the classifier must be loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise UserError(f"the app exited at start-up: {log.read().decode().strip()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            health = json.loads(conn.getresponse().read())
            conn.close()
        except OSError:
            time.sleep(0.2)
            continue
        if not (health.get("model_loaded") and health.get("classifier_loaded")):
            raise UserError(f"the app could not load its models: {health.get('error')}")
        return
    raise UserError(f"the app did not answer on port {port} within {timeout:.0f} s.")


def generate_requests(n_samples: int):
    """(path, bodies, check) for /generate: ``check`` names what is wrong with an answer."""
    def check(payload: dict) -> str | None:
        ok = payload.get("count") == n_samples == len(payload.get("images", []))
        return None if ok else f"expected {n_samples} images"

    return "/generate", [json.dumps({"n_samples": n_samples}).encode()], check


def classify_requests(splits, n_bodies: int = 16):
    """(path, bodies, check) for /classify: 280x280 PNGs of real handwritten digits."""
    digits = splits.test_images[:n_bodies]
    bodies = [json.dumps({"image": drawing_data_uri(digit)}).encode() for digit in digits]

    def check(payload: dict) -> str | None:
        return None if payload.get("digit") in range(10) else "no digit read"

    return "/classify", bodies, check


def run_clients(port: int, clients: int, total: int, path: str, bodies: list[bytes], check):
    """``clients`` threads send ``total`` requests (bodies in turn); latencies in ms,
    the problems found, and the wall time."""
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(total))
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                number = next(counter, None)
            if number is None:
                break
            body = bodies[number % len(bodies)]
            start = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                payload = json.loads(response.read())
                if response.status != 200 or payload.get("success") is not True:
                    problem = f"HTTP {response.status}: {payload.get('error')}"
                else:
                    problem = check(payload)
            except (OSError, ValueError, http.client.HTTPException) as err:
                problem = f"{type(err).__name__}: {err}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if problem:
                    errors.append(problem)
        conn.close()

    workers = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return np.array(latencies) * 1000, errors, time.perf_counter() - start


@cli
def main(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000, help="requests per route")
    parser.add_argument("--n-samples", type=int, default=16, help="images per /generate request")
    parser.add_argument("--threads", type=int, default=4, help="waitress worker threads")
    parser.add_argument("--warmup", type=int, default=50,
                        help="requests per route sent before timing")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK['requests']} requests per route after {QUICK['warmup']} "
                             "warm-up ones, for the test suite")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="folder holding generator.npz (default: models/generator)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="classifier checkpoint (default: models/mnist_cnn.pt)")
    add_data_options(parser, default_source="embedded")
    add_output_option(parser, "generator/app_load.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.warmup = QUICK["requests"], QUICK["warmup"]
    if not pca_kde.model_path(args.model_dir).is_file():
        raise UserError(f"no generator model at {pca_kde.model_path(args.model_dir)}; "
                        "run `make generator` first.")
    if not checkpoint_path(args.checkpoint).is_file():
        raise UserError(f"no classifier checkpoint at {checkpoint_path(args.checkpoint)}; "
                        f"train it with {TRAIN_COMMAND} first or pass --checkpoint PATH.")
    splits = load_mnist(args.source, root=args.data_dir)  # the test digits /classify reads
    routes = {"generate": (generate_requests(args.n_samples), P99_TARGET_MS),
              "classify": (classify_requests(splits), CLASSIFY_P99_TARGET_MS)}
    results = {}
    port = free_port()
    with tempfile.TemporaryFile() as log:
        server = start_server(port, args.threads, args.model_dir, args.checkpoint, log)
        try:
            for name, (requests, target) in routes.items():
                run_clients(port, args.clients, args.warmup, *requests)
                latencies, errors, wall = run_clients(port, args.clients, args.requests,
                                                      *requests)
                results[name] = summarise(latencies, errors, wall, target)
        finally:
            server.terminate()
            server.wait(timeout=10)
    # /generate keeps the top-level keys it always had; /classify has its own block.
    metrics = {**results["generate"], "classify": results["classify"]}
    # Only the default run writes the file the README quotes; any other writes beside it.
    defaults = {"clients": 16, "requests": 2000, "n_samples": 16, "threads": 4, "warmup": 50,
                "quick": False, "model_dir": None, "checkpoint": None, "source": "embedded",
                "data_dir": None}
    options = {**vars(args), **({"requests": 2000, "warmup": 50} if args.quick else {})}
    output = output_path(paths.generator_results() / "app_load.json",
                         full_mnist_naming(options, defaults, splits.summary()), defaults,
                         args.output)
    save_metrics(output, metrics, seed=None, config=vars(args), data=splits.summary())
    for route, what in (("generate", f"of {args.n_samples} images"),
                        ("classify", "of a 280x280 PNG")):
        m = results[route]
        print(f"/{route}: {m['requests']} requests {what}, {args.clients} clients, "
              f"{args.threads} server threads: p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} "
              f"ms (target {m['p99_target_ms']:.0f}), {m['throughput_rps']:.0f} requests/s, "
              f"{m['errors']} errors: target {'met' if m['meets_target'] else 'NOT met'}")
    print(f"results written to {output}")


if __name__ == "__main__":
    main()
