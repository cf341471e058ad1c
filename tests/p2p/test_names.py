"""What the P2P components accept as names, and pouchd's P2P flags."""
from __future__ import annotations

import pytest

from pouch.daemon.config import ConfigError, load
from pouch.p2p.names import BadName, blob_name, check_digest, check_registry, check_repository

GOOD = "sha256:" + "ab" * 32


def test_digests_are_algorithm_and_hex_and_file_names_come_from_them():
    assert check_digest(GOOD) == ("sha256", "ab" * 32)
    assert blob_name(GOOD) == "sha256-" + "ab" * 32
    assert blob_name("sha512:" + "0" * 128) == "sha512-" + "0" * 128
    for bad in ("/etc/hostname", "../../etc/passwd", "sha256:../x", "sha256:" + "ab" * 31,
                "sha256:" + "AB" * 32, "md5:" + "0" * 32, GOOD + "/..", GOOD + "\n", "", "sha256-" + "ab" * 32):
        with pytest.raises(BadName):
            check_digest(bad)


def test_repositories_and_registries():
    assert check_repository("library/busybox") == "library/busybox"
    assert check_registry("reg.example:5000") == "reg.example:5000"
    for bad in ("../etc", "a//b", "/abs", "UPPER", "a/../b", ""):
        with pytest.raises(BadName):
            check_repository(bad)
    for bad in ("a/b", "evil.example:80/x", "user@host", "", "h:99999999"):
        with pytest.raises(BadName):
            check_registry(bad)


def test_pouchd_p2p_tls_flags_go_together_and_need_https(tmp_path):
    conf = ["--config-file", str(tmp_path / "none.json")]
    cfg, _ = load(conf + ["--p2p-peer", "https://127.0.0.1:1", "--p2p-ca", "a", "--p2p-cert", "b", "--p2p-key", "c"])
    assert (cfg.p2p_ca, cfg.p2p_cert, cfg.p2p_key) == ("a", "b", "c")
    with pytest.raises(ConfigError, match="go together"):
        load(conf + ["--p2p-peer", "https://127.0.0.1:1", "--p2p-ca", "a"])
    with pytest.raises(ConfigError, match="https"):
        load(conf + ["--p2p-peer", "http://127.0.0.1:1", "--p2p-ca", "a", "--p2p-cert", "b", "--p2p-key", "c"])
