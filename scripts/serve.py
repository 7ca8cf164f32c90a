"""Serve the digit generator's web app.

Usage:
    python scripts/serve.py                       # waitress on http://127.0.0.1:8000
    python scripts/serve.py --host 0.0.0.0 --port 8080 --threads 8
    python scripts/serve.py --debug               # Flask's development server (debugging only)

Result: the page at ``/`` generates digits on demand; ``POST /generate``,
``GET /stats`` and ``GET /healthz`` answer JSON. Fit the model first with
``make generator``; without it every route answers 503 naming that command.
"""

from __future__ import annotations

from pathlib import Path

from digitlab.cli import UserError, cli, script_parser
from digitlab.web import create_app


def parse_args(argv):
    parser = script_parser(__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=4, help="waitress worker threads")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="folder holding generator.npz (default: models/generator)")
    parser.add_argument("--debug", action="store_true",
                        help="Flask's development server with the debugger (never in production)")
    return parser.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be from 1 to 65535, got {args.port}.")
    if args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}.")
    app = create_app(args.model_dir)
    print(f"serving the digit generator on http://{args.host}:{args.port}/")
    if args.debug:
        app.run(host=args.host, port=args.port, debug=True)
        return
    from waitress import serve

    try:
        serve(app, host=args.host, port=args.port, threads=args.threads)
    except OSError as err:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({err.strerror or err}); "
                        "choose another --port or --host.") from None


if __name__ == "__main__":
    main()
