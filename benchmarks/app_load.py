"""Load test of the generator web app under waitress.

Usage:
    python benchmarks/app_load.py                     # 16 clients, 2,000 requests of 16 images
    python benchmarks/app_load.py --clients 32 --requests 5000 --threads 8

Starts ``scripts/serve.py`` (waitress) on a free 127.0.0.1 port in a separate
process, waits for ``/healthz``, then ``--clients`` concurrent clients (each
with its own keep-alive connection) send ``--requests`` requests of
``POST /generate {"n_samples": 16}`` in total. Prints p50 / p99 latency,
throughput and the error count (any non-200 answer, ``success`` false, or a
wrong image count) and writes ``results/generator/app_load.json``.
Target: 0 errors and p99 at most 150 ms on 2 cores.
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
from digitlab.cli import UserError, cli, script_parser
from digitlab.generator import pca_kde
from digitlab.repro import save_metrics

P99_TARGET_MS = 150.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, threads: int, model_dir: Path | None, log) -> subprocess.Popen:
    command = [sys.executable, str(paths.PROJECT_ROOT / "scripts" / "serve.py"),
               "--port", str(port), "--threads", str(threads)]
    if model_dir is not None:
        command += ["--model-dir", str(model_dir)]
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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise UserError(f"the app exited at start-up: {log.read().decode().strip()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            status = conn.getresponse().status
            conn.close()
        except OSError:
            time.sleep(0.2)
            continue
        if status != 200:
            raise UserError("the app has no fitted model; run `make generator` first.")
        return
    raise UserError(f"the app did not answer on port {port} within {timeout:.0f} s.")


def run_clients(port: int, clients: int, total: int, n_samples: int):
    body = json.dumps({"n_samples": n_samples}).encode()
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(total))
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            start = time.perf_counter()
            try:
                conn.request("POST", "/generate", body=body, headers=headers)
                response = conn.getresponse()
                payload = json.loads(response.read())
                ok = (response.status == 200 and payload.get("success") is True
                      and payload.get("count") == n_samples == len(payload["images"]))
                problem = None if ok else f"HTTP {response.status}: {payload.get('error')}"
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
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--n-samples", type=int, default=16, help="images per request")
    parser.add_argument("--threads", type=int, default=4, help="waitress worker threads")
    parser.add_argument("--warmup", type=int, default=50, help="requests sent before timing")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="folder holding generator.npz (default: models/generator)")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON results (default: results/generator/app_load.json)")
    args = parser.parse_args(argv)
    if not pca_kde.model_path(args.model_dir).is_file():
        raise UserError(f"no generator model at {pca_kde.model_path(args.model_dir)}; "
                        "run `make generator` first.")
    port = free_port()
    with tempfile.TemporaryFile() as log:
        server = start_server(port, args.threads, args.model_dir, log)
        try:
            run_clients(port, args.clients, args.warmup, args.n_samples)
            latencies, errors, wall = run_clients(port, args.clients, args.requests,
                                                  args.n_samples)
        finally:
            server.terminate()
            server.wait(timeout=10)
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
    metrics = {
        "requests": int(len(latencies)), "errors": len(errors), "p50_ms": float(p50),
        "p90_ms": float(p90), "p99_ms": float(p99), "max_ms": float(latencies.max()),
        "throughput_rps": len(latencies) / wall, "wall_seconds": wall,
        "p99_target_ms": P99_TARGET_MS,
        "meets_target": bool(not errors and p99 <= P99_TARGET_MS),
        "first_errors": errors[:5],
    }
    output = args.output or paths.generator_results() / "app_load.json"
    save_metrics(output, metrics, seed=None, config=vars(args))
    print(f"{metrics['requests']} requests of {args.n_samples} images, {args.clients} clients, "
          f"{args.threads} server threads: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"{metrics['throughput_rps']:.0f} requests/s, {len(errors)} errors")
    print(f"results written to {output}")


if __name__ == "__main__":
    main()
