"""The app behind waitress, with limits that keep one client from stalling the others.

waitress's defaults suit a large site behind a proxy; served directly they let
100 idle connections stop it from accepting any more for two minutes, and
accept a 1 GB body (spilled to a temporary file) before the app can say no.
:data:`LIMITS` sizes both to this app.
"""

from __future__ import annotations

from digitlab.web import MAX_CLASSIFY_BODY_BYTES

LIMITS = {
    # waitress refuses a declared length equal to its limit: one byte of room keeps
    # the largest body the app accepts (/classify's) acceptable, and anything larger
    # is answered 413 from its headers, before a byte of it is buffered.
    "max_request_body_size": MAX_CLASSIFY_BODY_BYTES + 1,
    # Browsers send a few hundred bytes; cookies that other local apps set for
    # localhost can add a few KiB.
    "max_request_header_size": 32 * 1024,
    # Idle and half-open connections: many may be open, and none stays long.
    "connection_limit": 500,
    "channel_timeout": 10,
    "cleanup_interval": 2,
    # select() cannot watch a descriptor numbered 1024 or more; poll() can, where the
    # platform has it (waitress falls back to select() elsewhere).
    "asyncore_use_poll": True,
}


def make_server(app, host: str, port: int, threads: int):
    """A waitress server for ``app`` listening on ``host``:``port`` (0: any free port)
    with :data:`LIMITS`; ``run()`` serves, ``close()`` stops listening.

    Raises OSError when the address cannot be bound.
    """
    import waitress  # only the server needs it, not the app's importers

    return waitress.create_server(app, host=host, port=port, threads=threads, **LIMITS)
