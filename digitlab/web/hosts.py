"""Which ``Host`` headers the app answers when it listens on loopback only.

A page on another site can point its own domain name at 127.0.0.1 (DNS rebinding)
and then read the app's pages as if they were its own: the browser still sends
that domain in the ``Host`` header. An app bound to loopback is only ever reached
legitimately as ``localhost``, ``127.0.0.1``, ``[::1]`` or the address it was bound
to, so it refuses every other name. An app bound to a public interface cannot
know the names it is reached by, and checks none.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection

from flask import Flask, jsonify, request

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# host, or [IPv6 address], then an optional port; the port is not checked because
# the server, not the header, decides where a request arrives.
_HOST_HEADER = re.compile(r"(\[[0-9a-f:.]+\]|[^:\[\]/\s]+)(?::[0-9]{1,5})?", re.IGNORECASE)


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` (as given to ``--host``) reaches this machine only."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve to anything
        return False


def url_host(host: str) -> str:
    """``host`` as it appears in a URL or a Host header (IPv6 addresses in brackets)."""
    return f"[{host.strip('[]')}]" if ":" in host else host


def allowed_hosts(bind_host: str) -> tuple[str, ...] | None:
    """The host names an app listening on ``bind_host`` answers; None (any) unless it
    listens on loopback."""
    if not is_loopback(bind_host):
        return None
    bound = url_host(bind_host).lower()
    return LOOPBACK_NAMES if bound in LOOPBACK_NAMES else (*LOOPBACK_NAMES, bound)


def host_name(header: str | None) -> str | None:
    """The name in a ``Host`` header (``'localhost:8000'`` -> ``'localhost'``), lower
    case; None when there is no header or it is not ``host[:port]``."""
    match = _HOST_HEADER.fullmatch((header or "").strip())
    if match is None:
        return None
    # 'localhost.' is the same name as 'localhost', written fully qualified.
    return match.group(1).lower().rstrip(".")


def refuse_other_hosts(app: Flask, allowed: Collection[str]) -> None:
    """Answer 403 with one sentence to every request whose Host is not in ``allowed``."""
    names = ", ".join(allowed)

    @app.before_request
    def check_host():
        if host_name(request.headers.get("Host")) not in allowed:
            return jsonify(success=False,
                           error=f"this app answers only requests addressed to {names}, as "
                                 "it listens on this machine alone; open it through one of "
                                 "those names."), 403
        return None
