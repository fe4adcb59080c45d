"""A long-running process's Prometheus endpoint: `GET /metrics` from a thread of its own.

Used by `wanotify worker` and `wanotify consume-po-events` (opt-in `--metrics-port`);
the webhook app serves `/metrics` on its own routes. A thread of its own means a busy
event loop never delays a scrape.
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)


def serve_metrics(
    registry: CollectorRegistry, port: int, host: str = "127.0.0.1"
) -> tuple[WSGIServer, threading.Thread]:
    """Serve `registry` on http://host:port/metrics from a daemon thread; raises OSError
    when the port cannot be bound (fail closed: a configured endpoint must exist)."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return server, thread
