"""End-to-end CLI tests: the real `pouch` binary against the fake pouchd."""
import json
import os
import statistics
import subprocess
import time

import sys

from fake_pouchd import Hijack, Stream, frame

POUCH = os.path.join(sys.prefix, "bin", "pouch")

CID = "e42c68" + "a" * 58
CONTAINER = {"Id": CID, "Name": "/web", "State": {"Status": "running", "Running": True, "ExitCode": 0},
             "Config": {"Labels": {"app": "db"}, "Tty": False, "Env": ["A=1"]},
             "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}}


def test_version_prints_server_fields(fake, pouch):
    fake.route("GET", "/version", reply={"Version": "1.0.0", "APIVersion": "1.41", "Os": "linux"})
    r = pouch("version")
    assert r.returncode == 0
    out = r.stdout.decode()
    assert "Version:" in out and "1.0.0" in out and "APIVersion:" in out


def test_version_starts_fast(fake):
    """`pouch version` < 50 ms (median). Runs are interleaved with a bare interpreter start so
    that, when other work loads the machine, the limit scales with the interpreter's own start."""
    fake.route("GET", "/version", reply={"Version": "1.0.0"})
    python = os.path.join(os.path.dirname(POUCH), "python")
    cli, bare = [], []
    for _ in range(9):
        t0 = time.perf_counter()
        subprocess.run([POUCH, "-H", fake.host, "version"], check=True, capture_output=True)
        cli.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True, capture_output=True)
        bare.append(time.perf_counter() - t0)
    med_cli, med_bare = statistics.median(cli), statistics.median(bare)
    print("pouch version median %.1f ms, bare python %.1f ms" % (med_cli * 1e3, med_bare * 1e3))
    # idle machine: ~40 ms vs ~27 ms bare; importing aiohttp/grpc alone would add > 100 ms
    assert med_cli < max(0.050, 2.0 * med_bare), (med_cli, med_bare)


def test_cli_never_imports_heavy_modules(fake):
    fake.route("GET", "/containers/json", reply=[])
    code = ("import sys; from pouch.cli.main import main; main(['-H', %r, 'ps']); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'grpc', 'google', 'asyncio')"
            " or m.startswith('pouch.daemon')]; print(bad)") % fake.host
    r = subprocess.run([os.path.join(os.path.dirname(POUCH), "python"), "-c", code], capture_output=True)
    assert r.stdout.decode().strip().splitlines()[-1] == "[]"


def test_ps_table_uses_pouch_columns(fake, pouch):
    now = int(time.time())
    fake.route("GET", "/containers/json", reply=[
        {"Id": CID, "Names": ["/web"], "Image": "busybox:latest", "Status": "Up 2 minutes",
         "Created": now - 180, "HostConfig": {"Runtime": "runc"}},
        {"Id": "b" * 64, "Names": ["/old"], "Image": "redis", "Status": "created",
         "Created": now - 7200, "HostConfig": {"Runtime": "runsc"}}])
    r = pouch("ps", "-a")
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["Name", "ID", "Status", "Created", "Image", "Runtime"]
    assert lines[1].split()[:2] == ["web", "e42c68"] and lines[1].endswith("runc")
    assert "3 minutes ago" in lines[1]
    assert lines[2].split()[:2] == ["old", "bbbbbb"] and lines[2].endswith("runsc")
    assert fake.requests[0].q("all") == "1"


def test_ps_quiet_filter_and_format(fake, pouch):
    fake.route("GET", "/containers/json", reply=[{"Id": CID, "Names": ["/web"], "Image": "busybox",
                                                   "Created": 0, "Labels": {"a": "b"}}])
    assert pouch("ps", "-q").stdout == b"e42c68\n"
    assert pouch("ps", "-q", "--no-trunc").stdout.decode().strip() == CID
    assert pouch("ps", "--format", "{{.Names}}:{{.Image}}").stdout == b"web:busybox\n"
    table = pouch("ps", "--format", "table {{.ID}}\t{{.Names}}").stdout.decode().splitlines()
    assert table[0].split() == ["ID", "NAMES"] and table[1].split() == ["e42c68", "web"]
    pouch("ps", "-f", "status=exited", "--filter", "label=a=b")
    assert json.loads(fake.requests[-1].q("filters")) == {"status": ["exited"], "label": ["a=b"]}


def test_inspect_format_templates(fake, pouch):
    fake.route("GET", r"/containers/(\w+)/json", reply=CONTAINER)
    r = pouch("inspect", "-f", '{{.State.Status}} {{.Id}} {{index .Config.Labels "app"}}', "web")
    assert r.stdout.decode().strip() == "running %s db" % CID
    r = pouch("inspect", "-f", "{{json .Config}}", "web")
    assert json.loads(r.stdout) == CONTAINER["Config"]
    r = pouch("inspect", "web")
    assert json.loads(r.stdout) == [CONTAINER]


def test_inspect_missing_prints_one_error_line(fake, pouch):
    fake.route("GET", r"/containers/(\w+)/json", reply={"message": "container nope: not found"}, status=404)
    fake.route("GET", r"/images/(\w+)/json", reply={"message": "image nope: not found"}, status=404)
    r = pouch("inspect", "nope")
    assert r.returncode == 1
    assert r.stderr.decode().count("\n") == 1 and r.stderr.startswith(b"Error: ")
    assert b"nope" in r.stderr


def test_create_maps_flags_into_moby_body(fake, pouch, tmp_path):
    fake.route("POST", "/containers/create", reply={"Id": CID, "Warnings": []}, status=201)
    envfile = tmp_path / "env"
    envfile.write_text("# comment\nFROM_FILE=1\n")
    r = pouch("create", "--name", "web", "-e", "A=1", "--env-file", str(envfile), "-w", "/srv",
              "-u", "nobody", "-l", "k=v", "--hostname", "h1", "-v", "/host:/ctr:ro", "-v", "/anon",
              "--restart", "on-failure:3", "--stop-signal", "SIGINT", "--stop-timeout", "5", "--init",
              "--runtime", "runsc", "--net", "host", "-p", "127.0.0.1:8080:80/tcp", "-p", "53/udp", "-P",
              "--dns", "1.1.1.1", "--add-host", "db:10.0.0.2", "--privileged", "--cap-add", "NET_ADMIN",
              "--cap-drop", "MKNOD", "--security-opt", "no-new-privileges", "--device", "/dev/fuse",
              "--ulimit", "nofile=1024:2048", "--sysctl", "net.ipv4.ip_forward=1", "--shm-size", "64m",
              "--read-only", "--log-driver", "json-file", "--log-opt", "max-size=10m", "-m", "200m",
              "--memory-swap", "-1", "--memory-reservation", "100m", "--cpus", "1.5", "--cpu-shares", "512",
              "--cpuset-cpus", "0", "--cpuset-mems", "0", "--pids-limit", "100", "--oom-kill-disable",
              "--oom-score-adj", "100", "--tmpfs", "/run:size=1m", "--mount",
              "type=bind,source=/a,target=/b,readonly", "--enableLxcfs", "--disk-quota", "10g",
              "--disk-quota", "/data=5g", "--quota-id", "16777216", "--rich", "--rich-mode", "systemd",
              "--initscript", "/init.sh", "--entrypoint", "/bin/sh", "-t", "-i",
              "busybox", "echo", "-n", "hi")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == CID
    req = fake.find("POST", "/containers/create")[0]
    b, h = req.json, req.json["HostConfig"]
    assert req.q("name") == "web"
    assert b["Image"] == "busybox" and b["Cmd"] == ["echo", "-n", "hi"] and b["Entrypoint"] == ["/bin/sh"]
    assert b["Env"] == ["FROM_FILE=1", "A=1"] and b["Labels"] == {"k": "v"}
    assert (b["WorkingDir"], b["User"], b["Hostname"]) == ("/srv", "nobody", "h1")
    assert b["Tty"] is True and b["OpenStdin"] is True
    assert b["StopSignal"] == "SIGINT" and b["StopTimeout"] == 5
    assert b["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}} and b["Volumes"] == {"/anon": {}}
    assert b["DiskQuota"] == {"/": "10g", "/data": "5g"} and b["QuotaID"] == "16777216"
    assert b["Rich"] is True and b["RichMode"] == "systemd" and b["InitScript"] == "/init.sh"
    assert h["Binds"] == ["/host:/ctr:ro"]
    assert h["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert h["Init"] is True and h["Runtime"] == "runsc" and h["NetworkMode"] == "host"
    assert h["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                 "53/udp": [{"HostIp": "", "HostPort": ""}]}
    assert h["PublishAllPorts"] is True and h["Dns"] == ["1.1.1.1"] and h["ExtraHosts"] == ["db:10.0.0.2"]
    assert h["Privileged"] and h["CapAdd"] == ["NET_ADMIN"] and h["CapDrop"] == ["MKNOD"]
    assert h["SecurityOpt"] == ["no-new-privileges"]
    assert h["Devices"] == [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse",
                             "CgroupPermissions": "rwm"}]
    assert h["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert h["Sysctls"] == {"net.ipv4.ip_forward": "1"} and h["ShmSize"] == 64 << 20
    assert h["ReadonlyRootfs"] is True
    assert h["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m"}}
    assert h["Memory"] == 200 << 20 and h["MemorySwap"] == -1 and h["MemoryReservation"] == 100 << 20
    assert h["NanoCpus"] == 1_500_000_000 and h["CpuShares"] == 512
    assert h["CpusetCpus"] == "0" and h["CpusetMems"] == "0" and h["PidsLimit"] == 100
    assert h["OomKillDisable"] is True and h["OomScoreAdj"] == 100
    assert h["Tmpfs"] == {"/run": "size=1m"}
    assert h["Mounts"] == [{"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True}]
    assert h["EnableLxcfs"] is True


def test_bad_flag_values_fail_cleanly(fake, pouch):
    r = pouch("create", "-m", "lots", "busybox")
    assert r.returncode == 1 and r.stderr.startswith(b"Error: ") and b"--memory" in r.stderr
    r = pouch("create", "--restart", "sometimes", "busybox")
    assert r.returncode == 1 and b"restart policy" in r.stderr
    assert fake.requests == []


def _run_routes(fake, exit_code=3, output=b"hello\n"):
    fake.route("POST", "/containers/create", reply={"Id": CID, "Warnings": []}, status=201)

    def attach(req, cid):
        def talk(sock):
            assert fake.started.wait(5)
            sock.sendall(frame(1, output) + frame(2, b"warn\n"))
        return 101, Hijack(talk)

    def start(req, cid):
        fake.started.set()
        return 204, None

    def wait(req, cid):  # pouchd answers once the wait is registered: before start
        assert not fake.started.is_set()
        return 200, {"StatusCode": exit_code, "Error": None}
    fake.route("POST", r"/containers/(\w+)/attach", attach)
    fake.route("POST", r"/containers/(\w+)/start", start)
    fake.route("POST", r"/containers/(\w+)/wait", wait)


def test_run_attaches_starts_waits_and_propagates_exit_code(fake, pouch):
    _run_routes(fake, exit_code=3)
    r = pouch("run", "--rm", "busybox", "sh", "-c", "echo hello; exit 3")
    assert r.returncode == 3
    assert r.stdout == b"hello\n" and r.stderr == b"warn\n"
    order = [(q.method, q.path.split("/")[-1]) for q in fake.requests]
    assert order[:2] == [("POST", "create"), ("POST", "attach")]
    assert order[2:] == [("POST", "wait"), ("POST", "start")]   # wait is registered before start
    create = fake.requests[0].json
    assert create["HostConfig"]["AutoRemove"] is True
    assert create["AttachStdout"] is True and create["AttachStdin"] is False
    # --rm: like docker, return only once the daemon has removed the container
    assert fake.find("POST", r"/containers/\w+/wait")[0].q("condition") == "removed"
    assert fake.connections == 3     # keep-alive API conn + hijack + wait


def test_run_detached_prints_full_id(fake, pouch):
    _run_routes(fake)
    r = pouch("run", "-d", "busybox", "top")
    assert r.returncode == 0 and r.stdout.decode().strip() == CID
    assert [q.path.split("/")[-1] for q in fake.requests] == ["create", "start"]


def test_run_pulls_missing_image_then_retries(fake, pouch):
    calls = []

    def create(req):
        calls.append(1)
        if len(calls) == 1:
            return 404, {"message": "No such image: busybox:latest"}
        return 201, {"Id": CID, "Warnings": []}
    fake.route("POST", "/containers/create", create)
    fake.route("POST", "/images/create", reply=Stream([b'{"status":"Downloaded busybox"}\n']))
    fake.route("POST", r"/containers/(\w+)/start", reply=None, status=204)
    r = pouch("run", "-d", "busybox")
    assert r.returncode == 0, r.stderr
    assert fake.find("POST", "/images/create")[0].q("fromImage") == "busybox"
    assert len(calls) == 2


def test_run_stdin_is_forwarded(fake, pouch):
    fake.route("POST", "/containers/create", reply={"Id": CID, "Warnings": []}, status=201)
    fake.route("POST", r"/containers/(\w+)/start", reply=None, status=204)

    def attach(req, cid):
        def cat(sock):
            data = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            sock.sendall(frame(1, data))
        return 101, Hijack(cat)
    fake.route("POST", r"/containers/(\w+)/attach", attach)
    fake.route("POST", r"/containers/(\w+)/wait", reply={"StatusCode": 0})
    r = pouch("run", "-i", "busybox", "cat", input=b"piped data\n")
    assert r.returncode == 0 and r.stdout == b"piped data\n"
    assert fake.find("POST", r"/containers/\w+/attach")[0].q("stdin") == "1"


def test_exec_exit_code_and_body(fake, pouch):
    fake.route("POST", r"/containers/(\w+)/exec", reply={"Id": "ex1"}, status=201)
    fake.route("POST", r"/exec/(\w+)/start",
               lambda req, eid: (101, Hijack(lambda s: s.sendall(frame(1, b"in exec\n")))))
    fake.route("GET", r"/exec/(\w+)/json", reply={"ExitCode": 42, "Running": False})
    r = pouch("exec", "-u", "root", "-w", "/tmp", "-e", "X=1", "web", "sh", "-c", "exit 42")
    assert r.returncode == 42 and r.stdout == b"in exec\n"
    body = fake.requests[0].json
    assert body["Cmd"] == ["sh", "-c", "exit 42"] and body["User"] == "root"
    assert body["WorkingDir"] == "/tmp" and body["Env"] == ["X=1"]



def test_exec_takes_the_exit_code_from_the_stream_trailer(fake, pouch):
    """The CLI asks pouchd for the exit code trailer and then makes no inspect request."""
    fake.route("POST", r"/containers/(\w+)/exec", reply={"Id": "ex1"}, status=201)
    fake.route("POST", r"/exec/(\w+)/start", lambda req, eid: (101, Hijack(lambda s: s.sendall(
        frame(1, b"out\n") + frame(2, b"err\n") + frame(3, b'{"ExitCode": 5}')))))
    r = pouch("exec", "web", "sh", "-c", "exit 5")
    assert (r.returncode, r.stdout, r.stderr) == (5, b"out\n", b"err\n")
    start = fake.find("POST", r"/exec/\w+/start")[0]
    assert start.headers.get("X-Pouch-Exit-Code") == "1"
    assert not fake.find("GET", r"/exec/\w+/json")

def test_logs_writes_stdout_and_stderr(fake, pouch):
    fake.route("GET", r"/containers/(\w+)/json", reply=CONTAINER)
    fake.route("GET", r"/containers/(\w+)/logs",
               reply=Stream([frame(1, b"a\n") + frame(2, b"b\n")], "application/vnd.docker.raw-stream"))
    r = pouch("logs", "--tail", "5", "--since", "1700000000", "-t", "web")
    assert r.stdout == b"a\n" and r.stderr == b"b\n"
    q = fake.find("GET", r"/containers/\w+/logs")[0]
    assert q.q("tail") == "5" and q.q("since") == "1700000000" and q.q("timestamps") == "1"


def test_lifecycle_verbs_and_errors(fake, pouch):
    for verb in ("stop", "restart", "kill", "pause", "unpause"):
        fake.route("POST", r"/containers/(\w+)/" + verb, reply=None, status=204)
    fake.route("DELETE", r"/containers/(\w+)", lambda req, cid: (
        (404, {"message": "container %s: not found" % cid}) if cid == "gone" else (204, None)))
    assert pouch("stop", "-t", "2", "a", "b").stdout == b"a\nb\n"
    assert fake.requests[0].q("t") == "2"
    assert pouch("kill", "-s", "SIGUSR1", "a").returncode == 0
    assert fake.requests[-1].q("signal") == "SIGUSR1"
    r = pouch("rm", "-f", "-v", "a", "gone")
    assert r.returncode == 1 and r.stdout == b"a\n"
    assert r.stderr.decode().startswith("Error: ") and "gone" in r.stderr.decode()
    rm = fake.find("DELETE", "/containers/a")[0]
    assert rm.q("force") == "1" and rm.q("v") == "1"


def test_update_port_wait_top_rename(fake, pouch):
    fake.route("POST", r"/containers/(\w+)/update", reply={"Warnings": []})
    fake.route("GET", r"/containers/(\w+)/json", reply=CONTAINER)
    fake.route("POST", r"/containers/(\w+)/wait", reply={"StatusCode": 9})
    fake.route("GET", r"/containers/(\w+)/top", reply={"Titles": ["PID", "CMD"], "Processes": [["1", "top"]]})
    fake.route("POST", r"/containers/(\w+)/rename", reply=None, status=204)
    assert pouch("update", "-m", "1g", "--cpus", "2", "--restart", "always", "web").returncode == 0
    assert fake.requests[-1].json == {"Memory": 1 << 30, "NanoCpus": 2_000_000_000,
                                      "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}}
    assert pouch("port", "web").stdout == b"80/tcp -> 0.0.0.0:8080\n"
    assert pouch("wait", "web").stdout == b"9\n"
    assert pouch("top", "web").stdout.decode().split() == ["PID", "CMD", "1", "top"]
    assert pouch("rename", "web", "web2").returncode == 0
    assert fake.requests[-1].q("name") == "web2"


def test_images_rmi_tag(fake, pouch):
    fake.route("GET", "/images/json", reply=[{"Id": "sha256:" + "c" * 64, "RepoTags": ["busybox:latest"],
                                              "RepoDigests": [], "Size": 1234567, "Created": 0}])
    fake.route("DELETE", r"/images/(.+)", reply=[{"Untagged": "busybox:latest"}])
    fake.route("POST", r"/images/(.+)/tag", reply=None, status=201)
    lines = pouch("images").stdout.decode().splitlines()
    assert lines[0].split() == ["IMAGE", "ID", "IMAGE", "NAME", "SIZE"]
    assert lines[1].split()[:2] == ["c" * 12, "busybox:latest"] and "1.23 MB" in lines[1]
    assert pouch("images", "-q").stdout.decode().strip() == "c" * 12
    assert pouch("rmi", "-f", "busybox").returncode == 0
    assert fake.requests[-1].q("force") == "1"
    assert pouch("tag", "busybox", "my/box:v1").returncode == 0
    assert fake.requests[-1].q("repo") == "my/box" and fake.requests[-1].q("tag") == "v1"


def test_save_and_load(fake, pouch, tmp_path):
    fake.route("GET", "/images/save", reply=Stream([b"TAR", b"DATA"], "application/x-tar"))
    fake.route("POST", "/images/load", reply=Stream([b'{"stream":"Loaded image: busybox:latest\\n"}']))
    out = tmp_path / "img.tar"
    assert pouch("save", "-o", str(out), "busybox").returncode == 0
    assert out.read_bytes() == b"TARDATA"
    r = pouch("load", "-i", str(out))
    assert r.returncode == 0 and b"Loaded image: busybox:latest" in r.stdout
    assert fake.find("POST", "/images/load")[0].raw == b"TARDATA"


def test_events_and_remount_lxcfs(fake, pouch):
    ev = {"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "web"}},
          "time": 1700000000, "timeNano": 1700000000000000000}
    fake.route("GET", "/events", reply=Stream([json.dumps(ev).encode() + b"\n"]))
    fake.route("POST", "/remount-lxcfs", reply=None, status=200)
    r = pouch("events", "--since", "1699999999", "-f", "type=container")
    assert r.returncode == 0 and b"container start abc (name=web)" in r.stdout
    assert fake.requests[0].q("since") == "1699999999"
    assert pouch("remount-lxcfs").returncode == 0
    assert fake.requests[-1].path == "/remount-lxcfs"


def test_host_from_environment(fake, tmp_path):
    fake.route("GET", "/version", reply={"Version": "9.9"})
    env = dict(os.environ, POUCH_HOST=fake.host)
    r = subprocess.run([POUCH, "version"], capture_output=True, env=env)
    assert b"9.9" in r.stdout


def test_daemon_down_is_one_error_line(tmp_path):
    r = subprocess.run([POUCH, "-H", "unix://%s/x.sock" % tmp_path, "ps"], capture_output=True)
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1 and r.stderr.startswith(b"Error: ")
