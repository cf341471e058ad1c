"""Kernel probes of pouch.oci.cgroups on fake cgroup trees (v1 and v2 layouts)."""
from pouch.oci.cgroups import blkio_weight_file, kernel_memory_supported


def test_blkio_weight_file_v1(tmp_path):
    (tmp_path / "blkio").mkdir()
    assert blkio_weight_file(str(tmp_path)) is None
    (tmp_path / "blkio" / "blkio.bfq.weight").write_text("100")
    assert blkio_weight_file(str(tmp_path)) == "blkio.bfq.weight"
    (tmp_path / "blkio" / "blkio.weight").write_text("500")
    assert blkio_weight_file(str(tmp_path)) == "blkio.weight"


def test_blkio_weight_file_v2(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    assert blkio_weight_file(str(tmp_path)) is None
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    assert blkio_weight_file(str(tmp_path)) == "io.weight"


def test_kernel_memory_needs_the_v1_file(tmp_path):
    (tmp_path / "memory").mkdir()
    assert kernel_memory_supported(str(tmp_path)) is False


def test_kernel_memory_never_on_v2(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("memory\n")
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.kmem.limit_in_bytes").write_text("0")
    assert kernel_memory_supported(str(tmp_path)) is False
