"""P2P image distribution in Dragonfly's shape: a supernode schedules, peers share pieces.

- ``supernode``: the scheduler and CDN.  A blob is a task; the supernode downloads it from the
  registry once (its CDN copy), splits it into pieces, and tells each peer which peers (or
  itself) hold the piece it asks for.
- ``peer`` (Dragonfly's dfdaemon): runs on every host beside pouchd and acts as pouchd's registry
  mirror.  Manifests are proxied to the registry; blobs are assembled piece by piece from other
  peers (the supernode's copy as the fallback), kept, served to pouchd, and offered to the peers.

With ``pouchd --p2p-peer http://127.0.0.1:65001`` every pull goes through the local peer first
(the registry named in ``?ns=``), and straight to the registry if the peer fails; without it,
pulls go to the registry.  However many hosts pull, the registry serves each blob about once.
"""
