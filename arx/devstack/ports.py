"""Loopback ports for local services.

``free_port`` asks the kernel for an unused port and releases it at once, so
another process could take it before the caller binds it. That race is
acceptable for development services, which fail loudly on a taken port.
"""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def is_port_open(port: int, host: str = LOOPBACK, *, timeout: float = 0.2) -> bool:
    """Return True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
