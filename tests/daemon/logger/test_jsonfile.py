"""json-file reading without a daemon: tail from the end across rotated files, since/until, batches."""
from __future__ import annotations

import json

from pouch.daemon.logger import jsonfile
from pouch.daemon.logger.jsonfile import JsonFileLogger


def _write(path, n: int, opts=None, width: int = 0) -> JsonFileLogger:
    lg = JsonFileLogger(str(path), opts)
    for i in range(n):
        lg.write("stdout" if i % 3 else "stderr", f"line {i} {'x' * width}\n".encode())
    lg.close()
    return lg


def _texts(entries) -> list[str]:
    return [e["log"].split()[1] for e in entries]


def test_tail_reads_the_last_lines_across_rotated_files(tmp_path):
    log = tmp_path / "c-json.log"
    _write(log, 3000, {"max-size": "20k", "max-file": "5"}, width=40)
    everything = jsonfile.read_entries(str(log))
    assert len(everything) > 300 and (tmp_path / "c-json.log.3").exists()
    for n in (0, 1, 10, 77, len(everything) - 1, len(everything), len(everything) + 5):
        assert _texts(jsonfile.read_tail(str(log), n)) == _texts(everything[-n:] if n else [])


def test_tail_with_lines_longer_than_a_read_block(tmp_path):
    log = tmp_path / "c-json.log"
    _write(log, 20, width=jsonfile.BLOCK + 100)
    assert _texts(jsonfile.read_tail(str(log), 3)) == ["17", "18", "19"]


def test_tail_with_since_and_until_and_a_torn_last_line(tmp_path):
    log = tmp_path / "c-json.log"
    lines = [json.dumps({"log": f"line {i}\n", "stream": "stdout",
                         "time": jsonfile.rfc3339nano(1_000_000_000 * (1000 + i))}) for i in range(100)]
    log.write_text("\n".join(lines) + "\n" + '{"log": "torn')
    since, until = 1_000_000_000 * 1040, 1_000_000_000 * 1060
    assert _texts(jsonfile.read_tail(str(log), 5, since, until)) == ["56", "57", "58", "59", "60"]
    assert _texts(jsonfile.read_tail(str(log), 50, since, until)) == [str(i) for i in range(40, 61)]
    assert _texts(jsonfile.read_entries(str(log), since, until)) == [str(i) for i in range(40, 61)]


def test_full_read_goes_in_bounded_batches(tmp_path):
    log = tmp_path / "c-json.log"
    _write(log, 2500)
    batches = list(jsonfile.iter_entries(str(log), batch=1000))
    assert [len(b) for b in batches] == [1000, 1000, 500]
    assert _texts(batches[-1])[-1] == "2499"


def test_missing_log_reads_empty(tmp_path):
    assert jsonfile.read_tail(str(tmp_path / "none.log"), 10) == []
    assert jsonfile.read_entries(str(tmp_path / "none.log")) == []
