"""Serve the web app: generate digits, and draw a digit to see what the network reads.

Usage:
    python scripts/serve.py                       # waitress on http://127.0.0.1:8000
    python scripts/serve.py --host 0.0.0.0 --port 8080 --threads 8
    python scripts/serve.py --checkpoint models/mnist_cnn_awgn.pt   # another classifier
    python scripts/serve.py --debug               # Flask's development server (debugging only,
                                                  # on a loopback --host only)

Result: the page at ``/`` generates digits on demand and ``/draw`` reads a digit
drawn with mouse, pen or finger; ``POST /generate``, ``POST /classify``,
``GET /stats`` and ``GET /healthz`` answer JSON. The generator comes from
``make generator``, the classifier from ``make mnist``; a missing one makes its
own routes answer 503 naming that command, and the other routes keep working;
a ``--model-dir`` or ``--checkpoint`` given but not there is an error.

Bound to loopback (the default), the app answers only requests addressed to
localhost, 127.0.0.1 or [::1], so that no other site's page can read it through
DNS rebinding. waitress runs with limits sized to the app
(``digitlab.web.server.LIMITS``): a body larger than the largest valid request
is refused from its headers, and idle connections neither pile up nor stop it
from answering.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from digitlab.cli import add_device, cli, script_parser
from digitlab.errors import UserError
from digitlab.generator.pca_kde import model_path
from digitlab.web import create_app
from digitlab.web.hosts import allowed_hosts, is_loopback, url_host
from digitlab.web.server import make_server


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=4, help="waitress worker threads")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="folder holding generator.npz (default: models/generator)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="classifier checkpoint (default: models/mnist_cnn.pt)")
    add_device(parser, default="cpu")  # serving: one small forward pass per request
    parser.add_argument("--threads-per-request", type=int, default=1,
                        help="threads one request may use (PyTorch, and BLAS under NumPy); "
                             "requests already run in parallel on waitress's threads")
    parser.add_argument("--debug", action="store_true",
                        help="Flask's development server with the debugger (never in production)")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """UserError for options that cannot work together or name nothing."""
    if args.debug and not is_loopback(args.host):
        # The debugger runs any Python code sent to it: on another interface, anyone who
        # reaches the port owns the machine.
        raise UserError(f"--debug runs Flask's debugger, which executes code sent to it, so "
                        f"it listens on loopback only: use --host 127.0.0.1 (not "
                        f"{args.host}), or leave --debug out.")
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be from 1 to 65535, got {args.port}.")
    if args.threads < 1 or args.threads_per_request < 1:
        raise UserError("--threads and --threads-per-request must be at least 1.")
    # A model left at its default may be missing (its routes answer 503); one named on
    # the command line and not there is a typo.
    if args.model_dir is not None and not model_path(args.model_dir).is_file():
        raise UserError(f"--model-dir {args.model_dir} holds no {model_path(args.model_dir).name}; "
                        "fit one there with make generator, or leave --model-dir out.")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise UserError(f"--checkpoint {args.checkpoint} does not exist; train one with "
                        "make mnist, or leave --checkpoint out.")


def build_app(args: argparse.Namespace):
    """The app the options describe; on loopback it answers loopback host names only."""
    return create_app(args.model_dir, checkpoint=args.checkpoint, device=args.device,
                      allowed_hosts=allowed_hosts(args.host))


def build_server(args: argparse.Namespace):
    """The app behind waitress with its limits, listening on ``--host``:``--port``
    (port 0: any free port); UserError when that address cannot be bound."""
    app = build_app(args)
    try:
        return make_server(app, args.host, args.port, args.threads)
    except OSError as err:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({err.strerror or err}); "
                        "choose another --port or --host.") from None


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    # Each request is small work (a 16x50 by 50x784 product, one small forward pass):
    # extra threads per request only fight the other requests for the cores.
    torch.set_num_threads(args.threads_per_request)
    threadpool_limits(limits=args.threads_per_request, user_api="blas")
    address = f"http://{url_host(args.host)}:{args.port}"
    if args.debug:
        app = build_app(args)
        print(f"serving digitlab on {address}/ (draw a digit: {address}/draw)")
        app.run(host=args.host, port=args.port, debug=True)
        return
    logging.basicConfig()  # waitress's warnings (a full queue, the connection limit)
    server = build_server(args)
    print(f"serving digitlab on {address}/ (draw a digit: {address}/draw)", flush=True)
    server.run()


if __name__ == "__main__":
    main()
