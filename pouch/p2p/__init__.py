"""P2P image distribution: a supernode and a peer per host, on libtorrent, over mutual TLS.

- ``supernode``: tracker, origin seed and metainfo maker for each blob (Uber's Kraken's shape).
  It downloads a blob from its registry once, verifies it, makes a v2 (SHA-256) SSL torrent of
  it, seeds it, and tells peers which other peers hold it.  Its state survives a restart.
- ``peer``: runs on every host beside pouchd and is its registry mirror.  A blob is served only
  after the registry accepted the client's own credentials for it (a HEAD); it comes from the
  local cache (re-verified) or the swarm (pieces verified, in order, streamed as they arrive),
  or, on any P2P failure, straight from the registry.
- ``swarm`` (libtorrent), ``names`` (what is accepted as a digest, repository, registry),
  ``tls`` (the cluster CA), ``origin`` (verified registry downloads), ``cache`` (LRU bounds).

With ``pouchd --p2p-peer https://127.0.0.1:65001 --p2p-ca/--p2p-cert/--p2p-key`` every pull
goes through the local peer first (the registry named in ``?ns=``), and straight to the registry
if the peer fails; without it, pulls go to the registry.
"""
