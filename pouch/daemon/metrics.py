"""pouchd's Prometheus metrics, named as PouchContainer exports them (prometheus_client).

``engine_daemon_{container,image}_actions_counter_total`` and
``..._success_actions_counter_total`` count API actions by ``action`` label,
``engine_daemon_{container,image}_actions_seconds`` time them,
``engine_daemon_image_pull_latency_microseconds`` summarises pulls and
``engine_daemon_engine_info`` carries version, commit and kernel; with a P2P peer,
``engine_daemon_p2p_bytes_total`` (by ``source``: peers, supernode, registry) and
``engine_daemon_p2p_failures_total`` (by ``kind``: p2p, hash) carry its counters, asked of the
peer at each scrape (``Metrics.set_p2p``, ``Metrics.refresh``).  The server
wraps the handlers named in ACTIONS (pouch.daemon.server.app.build_app); nothing
else pays for metrics.
"""
from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily

_P = "engine_daemon_"

# (method, route path) -> (kind, action), Pouch's action labels
ACTIONS = {
    ("POST", "/containers/create"): ("container", "create"),
    ("DELETE", "/containers/{id}"): ("container", "delete"),
    ("POST", "/containers/{id}/start"): ("container", "start"),
    ("POST", "/containers/{id}/stop"): ("container", "stop"),
    ("POST", "/containers/{id}/restart"): ("container", "restart"),
    ("POST", "/containers/{id}/rename"): ("container", "rename"),
    ("POST", "/containers/{id}/update"): ("container", "update"),
    ("POST", "/containers/{id}/upgrade"): ("container", "upgrade"),
    ("POST", "/containers/{id}/pause"): ("container", "pause"),
    ("POST", "/containers/{id}/unpause"): ("container", "unpause"),
    ("GET", "/containers/{id}/stats"): ("container", "stats"),
    ("GET", "/containers/json"): ("container", "list"),
    ("POST", "/images/create"): ("image", "pull"),
    ("DELETE", "/images/{name:.+}"): ("image", "delete"),
    ("GET", "/images/json"): ("image", "list"),
    ("GET", "/images/{name:.+}/json"): ("image", "info"),
}


class Metrics:
    """One registry per daemon (tests run several in one process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.counter = {k: Counter(f"{_P}{k}_actions_counter", f"The number of {k} operations", ["action"], registry=r)
                        for k in ("container", "image")}
        self.success = {k: Counter(f"{_P}{k}_success_actions_counter", f"The number of {k} success operations",
                                   ["action"], registry=r) for k in ("container", "image")}
        self.timer = {k: Histogram(f"{_P}{k}_actions_seconds",
                                   f"The number of seconds it takes to process each {k} action", ["action"],
                                   registry=r) for k in ("container", "image")}
        self.pull = Summary(f"{_P}image_pull_latency_microseconds", "Latency in microseconds to pull a image.",
                            ["image"], registry=r)
        self.engine = Gauge(f"{_P}engine_info", "The version and commit information of the engine process",
                            ["commit", "version", "kernel"], registry=r)

        self._p2p_source = None  # async () -> the P2P peer's /stats, or None
        self._p2p: dict | None = None
        r.register(_P2PCollector(self))

    def set_p2p(self, source) -> None:
        """Export the P2P peer's counters, asked of ``source`` (async -> dict | None) per scrape."""
        self._p2p_source = source

    async def refresh(self) -> None:
        """Before an exposition: fetch what is not kept here (the P2P peer's counters)."""
        if self._p2p_source is not None:
            self._p2p = await self._p2p_source()

    def set_engine(self, version: str, commit: str, kernel: str) -> None:
        self.engine.labels(commit=commit, version=version, kernel=kernel).set(1)

    def instrument(self, method: str, path: str, handler):
        """The handler, counted and timed when (method, path) is one of Pouch's actions."""
        hit = ACTIONS.get((method, path))
        if hit is None:
            return handler
        kind, action = hit
        count, ok, timer = self.counter[kind].labels(action), self.success[kind].labels(action), \
            self.timer[kind].labels(action)
        pull = self.pull if action == "pull" else None

        async def counted(request):
            start = time.monotonic()
            try:
                resp = await handler(request)
            finally:
                count.inc()
                took = time.monotonic() - start
                timer.observe(took)
                if pull is not None:
                    pull.labels(request.query.get("fromImage", "")).observe(took * 1e6)
            if getattr(resp, "status", 200) < 400:
                ok.inc()
            return resp
        return counted

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_P2P_BYTES = {"peers": "bytesFromPeers", "supernode": "bytesFromSupernode", "registry": "bytesFromRegistry"}
_P2P_FAILURES = {"p2p": "p2pFailures", "hash": "hashFailures"}


class _P2PCollector:
    """The P2P peer's counters as of the last refresh (nothing without a peer that answered)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self):
        stats = self.metrics._p2p
        if not stats:
            return
        b = CounterMetricFamily(f"{_P}p2p_bytes", "Blob bytes the P2P peer got, by source", labels=["source"])
        for label, key in _P2P_BYTES.items():
            b.add_metric([label], stats.get(key, 0))
        f = CounterMetricFamily(f"{_P}p2p_failures", "P2P fetches that fell back to the registry (p2p) and "
                                "pieces that failed their hash (hash)", labels=["kind"])
        for label, key in _P2P_FAILURES.items():
            f.add_metric([label], stats.get(key, 0))
        yield b
        yield f
