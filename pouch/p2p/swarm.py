"""The piece exchange, on libtorrent: one session per P2P component, one torrent per blob.

A blob's metainfo is a v2 (SHA-256 merkle) single-file torrent made by the supernode from the
verified blob: every 4 MiB piece is checked against it as it arrives, a peer that sends a bad
piece is banned (libtorrent's smart-ban), requests go to many peers at once with timeouts, and
rates can be capped.  With a cluster CA the torrent is an SSL torrent carrying the CA as its root
certificate: peers connect over TLS and must present a certificate the CA signed.  The torrents
are private and DHT, local discovery, UPnP and PEX are off: peers learn of each other only from
the supernode, over its authenticated API.
"""
from __future__ import annotations

import asyncio
import os
import warnings

import libtorrent as lt

from .pieces import PIECE_SIZE
from .tls import ClusterTLS


def make_torrent(path: str, tls: ClusterTLS | None, piece_size: int = PIECE_SIZE) -> bytes:
    """Metainfo (bencoded) for the single file ``path``; blocking (hashes the file)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fs = lt.file_storage()
        fs.add_file(os.path.basename(path), os.path.getsize(path))
        ct = lt.create_torrent(fs, piece_size, lt.create_torrent.v2_only)
    ct.set_priv(True)
    ct.set_creator("pouch supernode")
    if tls is not None:
        ct.set_root_cert(tls.ca_pem())
    lt.set_piece_hashes(ct, os.path.dirname(path))
    return lt.bencode(ct.generate())


class Swarm:
    """A libtorrent session (its own threads; calls from the event loop do not block)."""

    def __init__(self, listen: str, tls: ClusterTLS | None, upload_rate: int = 0, download_rate: int = 0) -> None:
        self.tls = tls
        host, _, port = listen.rpartition(":")
        settings = {
            "listen_interfaces": f"{host}:{port}" + ("s" if tls else ""),
            "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
            "allow_multiple_connections_per_ip": True,  # hosts behind one address, tests on loopback
            # TCP only: uTP (for home links) costs CPU and throughput on a cluster's LAN
            "enable_outgoing_utp": False, "enable_incoming_utp": False,
            "send_buffer_watermark": 4 << 20, "send_buffer_low_watermark": 1 << 20,
            "upload_rate_limit": upload_rate, "download_rate_limit": download_rate,
            # a hung peer's requests go elsewhere after request/piece timeouts; connecting and the
            # TLS handshake get longer: on a loaded host a 3-5 s handshake budget failed every
            # attempt and the swarm sent nothing at all (measured: load 40 on 2 cores)
            "peer_connect_timeout": 15, "handshake_timeout": 20, "request_timeout": 10, "piece_timeout": 10,
            "peer_timeout": 60, "inactivity_timeout": 60,
            "max_out_request_queue": 1500, "max_allowed_in_request_queue": 2000,
            "connections_limit": 400, "unchoke_slots_limit": 32,
            "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.storage_notification
            | lt.alert.category_t.status_notification | lt.alert.category_t.piece_progress_notification,
            "user_agent": "pouch-p2p",
        }
        self.session = lt.session(settings)
        # the rate limits above bind the global peer class only, and libtorrent keeps peers on
        # local networks (10/8, 192.168/16, loopback: a cluster's every peer) in a class of their
        # own with no limit: cap that class too, or --upload-rate/--download-rate do nothing
        local = self.session.get_peer_class(lt.session.local_peer_class_id)
        local.update(upload_limit=upload_rate, download_limit=download_rate)
        self.session.set_peer_class(lt.session.local_peer_class_id, local)
        self.handles: dict[str, lt.torrent_handle] = {}  # blob name -> handle
        self.reads: dict[tuple[str, int], asyncio.Future] = {}
        self.names: dict[str, str] = {}             # info-hash -> blob name
        self.done: dict[str, set[int]] = {}         # blob name -> pieces finished (verified)
        self.events: dict[str, asyncio.Event] = {}  # set when a piece of the blob finishes
        self.hash_failures = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver libtorrent's alerts (piece reads) into ``loop``."""
        self.loop = loop
        self.session.set_alert_notify(lambda: loop.call_soon_threadsafe(self._drain))

    def _drain(self) -> None:
        for a in self.session.pop_alerts():
            if isinstance(a, lt.read_piece_alert):
                fut = self.reads.pop((str(a.handle.info_hashes().get_best()), a.piece), None)
                if fut is not None and not fut.done():
                    if a.error.value():
                        fut.set_exception(OSError(a.error.message()))
                    else:
                        fut.set_result(bytes(a.buffer))
            elif isinstance(a, lt.piece_finished_alert):
                name = self.names.get(str(a.handle.info_hashes().get_best()))
                if name in self.done:
                    self.done[name].add(a.piece_index)
                    self.events[name].set()
            elif isinstance(a, lt.hash_failed_alert):
                self.hash_failures += 1

    async def read_piece(self, name: str, i: int, timeout: float = 30) -> bytes:
        """A piece we have, read back through libtorrent's disk layer (its write cache included:
        a finished piece may not have reached the file yet)."""
        h = self.handles[name]
        key = (str(h.info_hashes().get_best()), i)
        fut = self.reads.get(key)
        if fut is None:
            fut = self.reads[key] = self.loop.create_future()
            h.read_piece(i)
        return await asyncio.wait_for(asyncio.shield(fut), timeout)

    @staticmethod
    def file_size(h: lt.torrent_handle) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return h.torrent_file().files().file_size(0)

    @property
    def port(self) -> int:
        return self.session.ssl_listen_port() if self.tls else self.session.listen_port()

    def add(self, name: str, metainfo: bytes, save_path: str, seed: bool = False) -> lt.torrent_handle:
        """Start sharing blob ``name``: seeding from ``save_path`` (re-checked against the
        metainfo first) or downloading into it, pieces in order.  (libtorrent's seed mode, which
        checks a piece only when first asked for, stalls v2 torrents: measured, not used.)"""
        if name in self.handles:
            return self.handles[name]
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(metainfo))
        params.save_path = save_path
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        if not seed:
            params.flags |= lt.torrent_flags.sequential_download
        h = self.session.add_torrent(params)
        self.names[str(h.info_hashes().get_best())] = name
        self.done[name] = set()
        self.events[name] = asyncio.Event()
        if self.tls:
            h.set_ssl_certificate(self.tls.cert, self.tls.key, "")
            h.clear_error()  # libtorrent 2 flags the (unused, ECDHE) DH parameter file we do not give
        self.handles[name] = h
        return h

    def remove(self, name: str, delete_files: bool = False) -> None:
        h = self.handles.pop(name, None)
        self.done.pop(name, None)
        self.events.pop(name, None)
        if h is not None and h.is_valid():
            self.session.remove_torrent(h, lt.session.delete_files if delete_files else 0)

    def connect(self, name: str, peers: list[tuple[str, int]]) -> None:
        h = self.handles.get(name)
        if h is None:
            return
        for host, port in peers:
            try:
                h.connect_peer((host, port))
            except RuntimeError:
                pass  # bad address: the supernode's list is advisory

    def drain_alerts(self) -> list[str]:
        return [a.message() for a in self.session.pop_alerts()]

    def close(self) -> None:
        self.session.set_alert_notify(lambda: None)
        for name in list(self.handles):
            self.remove(name)
        del self.session
