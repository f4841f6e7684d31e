"""The local source on this real machine: real /proc, real sockets, certificates, files and HTTP."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, List

import psutil
import pytest

from agent.config import BackupTarget, CollectConfig, HttpTarget
from agent.redact import mask_url
from agent.sources import ToolError, gather, read_text, run_tool
from agent.sources import local as local_source
from agent.sources.host import host_identity
from agent.sources.local import backup_facts, certificates, gather_status, http_probe
from checks.facts import FactSet
from checks.parsers.file_nr import parse_file_nr
from tests.conftest import require_service

STATUS_SECTIONS = (
    "cpu",
    "memory",
    "filesystems",
    "uptime",
    "time_sync",
    "processes",
    "services",
    "ports",
    "fds",
    "certificates",
    "backups",
    "http",
)


def openssl_cert(directory: Path, name: str, days: int) -> Path:
    """A real self-signed certificate and its key, made by openssl."""
    require_service(shutil.which("openssl") is not None, "openssl not installed")
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    argv += ["-nodes", "-days", str(days)]
    subprocess.run(
        [*argv, "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}.example.cn/O=Kehu"],
        check=True,
        capture_output=True,
    )
    return cert


def openssl_not_after(cert: Path) -> datetime:
    out = subprocess.run(
        ["openssl", "x509", "-enddate", "-noout", "-in", str(cert)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return datetime.fromtimestamp(
        ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]), timezone.utc
    )


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = {"/": 200, "/moved": 301, "/fail": 503}.get(self.path.split("?")[0], 404)
        self.send_response(status)
        if status == 301:
            self.send_header("Location", "/")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def tls_web(tmp_path: Path) -> Iterator[str]:
    """HTTPS with a self-signed certificate: the probe must refuse it, not ignore it."""
    cert = openssl_cert(tmp_path, "selfsigned", 5)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(tmp_path / "selfsigned.key"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on: bound once to get a free number, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def backups(tmp_path: Path) -> Path:
    root = tmp_path / "backup"
    (root / "db" / "2026").mkdir(parents=True)
    for name, age_hours, size in (("a.dump", 50, 10), ("b.dump", 2, 300), ("2026/c.dump", 30, 20)):
        path = root / "db" / name
        path.write_bytes(b"x" * size)
        mtime = datetime.now(timezone.utc).timestamp() - age_hours * 3600
        os.utime(path, (mtime, mtime))
    (root / "db" / "dir.dump").mkdir()  # a directory matching the glob is not a backup
    return root


@pytest.fixture(scope="module")
def facts_and_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """One gather of everything, with a listening socket and a zombie child alive meanwhile."""
    tmp = tmp_path_factory.mktemp("local")
    cert = openssl_cert(tmp, "shop", 10)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    zombie = subprocess.Popen(["true"])  # exits at once; stays a zombie until wait()
    for _ in range(200):
        if psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE:
            break
        threading.Event().wait(0.01)
    collect = CollectConfig(certificates=[str(cert)], backups=[], http=[])
    try:
        facts = gather_status(collect, cpu_seconds=0.2)
        yield (
            facts,
            {
                "tcp": listener.getsockname()[1],
                "udp": udp.getsockname()[1],
                "zombie": zombie.pid,
                "cert": cert,
            },
        )
    finally:
        zombie.wait()
        listener.close()
        udp.close()


def test_factset_is_complete_and_valid(facts_and_world: tuple) -> None:
    facts, _ = facts_and_world
    assert facts.errors == {}
    for section in STATUS_SECTIONS:
        assert getattr(facts, section) is not None, section
    assert FactSet.model_validate_json(facts.model_dump_json()) == facts
    for other in ("logs", "coredumps", "service_events", "history", "reboots", "packages"):
        assert getattr(facts, other) is None


def test_cpu_memory_uptime_fds(facts_and_world: tuple) -> None:
    facts, _ = facts_and_world
    assert facts.cpu.logical_cores == os.cpu_count()
    assert 0.0 <= facts.cpu.usage_percent <= 100.0
    assert facts.cpu.load1 >= 0 and facts.cpu.iowait_percent is not None
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    assert facts.memory.total_bytes == int(meminfo["MemTotal"].split()[0]) * 1024
    assert facts.memory.swap_total_bytes == int(meminfo["SwapTotal"].split()[0]) * 1024
    assert 0 < facts.memory.available_bytes <= facts.memory.total_bytes
    boot = datetime.fromtimestamp(psutil.boot_time(), timezone.utc)
    assert facts.uptime.boot_time == boot
    assert facts.uptime.uptime_seconds == pytest.approx((facts.collected_at - boot).total_seconds())
    maximum = int(Path("/proc/sys/fs/file-nr").read_text().split()[2])
    assert facts.fds.maximum == maximum and facts.fds.allocated > 0


def test_filesystems_match_statvfs(facts_and_world: tuple) -> None:
    facts, _ = facts_and_world
    assert facts.filesystems, "no block-device filesystem found on this machine"
    for fs in facts.filesystems:
        st = os.statvfs(fs.mount)
        assert fs.total_bytes == st.f_blocks * st.f_frsize
        assert fs.readonly == ("ro" in fs.options)
        assert fs.fstype not in ("tmpfs", "proc", "sysfs", "devtmpfs", "cgroup2")
        if fs.inodes_total:
            assert fs.inodes_total == st.f_files
    mounts = {p.mountpoint for p in psutil.disk_partitions(all=False)}
    assert {fs.mount for fs in facts.filesystems} <= mounts


def test_processes_ports_services(facts_and_world: tuple) -> None:
    facts, world = facts_and_world
    me = psutil.Process()
    assert facts.processes.total >= 2
    assert facts.processes.names.get(me.name(), 0) >= 1
    assert world["zombie"] in [z.pid for z in facts.processes.zombies]
    [zombie] = [z for z in facts.processes.zombies if z.pid == world["zombie"]]
    assert zombie.ppid == os.getpid() and zombie.name == "true"
    by_port = {(p.proto, p.port): p for p in facts.ports}
    tcp = by_port[("tcp", world["tcp"])]
    assert tcp.address == "127.0.0.1" and tcp.process == me.name()
    assert ("udp", world["udp"]) in by_port
    expected = "systemd" if os.path.isdir("/run/systemd/system") else "none"
    assert facts.services.manager == expected
    if expected == "systemd":
        assert facts.services.units


def test_time_sync_says_what_it_used(facts_and_world: tuple) -> None:
    ts = facts_and_world[0].time_sync
    assert ts.tool in ("timedatectl", "chronyc", "ntpq", "none")
    if ts.tool == "none":
        assert (
            ts.error and "timedatectl" in ts.error and "chronyc" in ts.error and "ntpq" in ts.error
        )
    else:
        assert ts.synchronized is not None


def test_certificate_from_openssl(facts_and_world: tuple) -> None:
    facts, world = facts_and_world
    [cert] = facts.certificates
    assert cert.error is None
    assert cert.path == str(world["cert"])
    assert cert.subject == "CN=shop.example.cn, O=Kehu"
    assert cert.not_after == openssl_not_after(world["cert"])


def test_certificate_chain_bad_and_missing_files(tmp_path: Path) -> None:
    leaf, ca = openssl_cert(tmp_path, "leaf", 30), openssl_cert(tmp_path, "ca", 3650)
    key = tmp_path / "leaf.key"
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(key.read_text() + leaf.read_text() + ca.read_text())
    chain = certificates(str(bundle))
    assert [c.subject for c in chain] == ["CN=leaf.example.cn, O=Kehu", "CN=ca.example.cn, O=Kehu"]
    assert [c.not_after for c in chain] == [openssl_not_after(leaf), openssl_not_after(ca)]
    secret = key.read_text().splitlines()[1]
    assert secret not in "".join(c.model_dump_json() for c in chain)
    [only_key] = certificates(str(key))
    assert only_key.error == "no PEM certificate in the file" and only_key.not_after is None
    [missing] = certificates(str(tmp_path / "gone.pem"))
    assert missing.error == f"No such file or directory: {tmp_path / 'gone.pem'}"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    [broken] = certificates(str(garbage))
    assert broken.error and broken.error.startswith("unreadable certificate")
    [directory] = certificates(str(tmp_path))
    assert directory.error == f"Is a directory: {tmp_path}"


def test_backups_newest_file_by_glob(backups: Path) -> None:
    flat = backup_facts(BackupTarget(pattern=str(backups / "db" / "*.dump")))
    assert (flat.matches, flat.newest_path, flat.newest_size_bytes, flat.error) == (
        2,
        str(backups / "db" / "b.dump"),
        300,
        None,
    )
    assert flat.newest_mtime is not None
    age = datetime.now(timezone.utc) - flat.newest_mtime
    assert 1.9 * 3600 < age.total_seconds() < 2.1 * 3600
    deep = backup_facts(BackupTarget(pattern=str(backups / "**" / "*.dump")))
    assert deep.matches == 3 and deep.newest_path == str(backups / "db" / "b.dump")
    none = backup_facts(BackupTarget(pattern=str(backups / "nothing" / "*.tar.gz")))
    assert (none.matches, none.newest_path, none.error) == (0, None, None)


def test_http_probe_against_a_real_server(web: str) -> None:
    up = http_probe(HttpTarget(url=f"{web}/", timeout_seconds=5))
    assert (up.url, up.status, up.error) == (f"{web}/", 200, None)
    assert up.elapsed_ms is not None and up.elapsed_ms > 0
    assert http_probe(HttpTarget(url=f"{web}/moved")).status == 301
    assert http_probe(HttpTarget(url=f"{web}/fail")).status == 503


def test_http_probe_unreachable_and_secrets_hidden(web: str) -> None:
    port = closed_port()
    down = http_probe(HttpTarget(url=f"http://127.0.0.1:{port}/health", timeout_seconds=2))
    assert down.status is None and down.elapsed_ms is None
    assert down.error is not None and down.error.startswith("ConnectError")
    host_port = web.split("//", 1)[1]
    probe = http_probe(HttpTarget(url=f"http://ops:s3cretPW@{host_port}/?token=abc123&x=1"))
    assert probe.status == 200
    assert probe.url == f"http://***@{host_port}/?token=***&x=***"
    assert "s3cretPW" not in probe.model_dump_json() and "abc123" not in probe.model_dump_json()
    bad = http_probe(HttpTarget(url="ftp://127.0.0.1/"))
    assert bad.error is not None and bad.status is None
    assert mask_url("https://[::1]:8443/a") == "https://[::1]:8443/a"


def test_http_probe_verifies_tls(tls_web: str) -> None:
    probe = http_probe(HttpTarget(url=f"{tls_web}/", timeout_seconds=5))
    assert probe.status is None
    assert probe.error is not None and "CERTIFICATE_VERIFY_FAILED" in probe.error


def test_gather_status_with_targets(backups: Path, web: str, tmp_path: Path) -> None:
    collect = CollectConfig(
        certificates=[str(tmp_path / "missing.pem")],
        backups=[BackupTarget(pattern=str(backups / "db" / "*.dump"))],
        http=[HttpTarget(url=f"{web}/"), HttpTarget(url=f"http://127.0.0.1:{closed_port()}/")],
    )
    facts = gather_status(collect, cpu_seconds=0.05)
    assert facts.certificates is not None and facts.certificates[0].error is not None
    assert facts.backups is not None and facts.backups[0].newest_path == str(
        backups / "db" / "b.dump"
    )
    assert facts.http is not None
    assert [p.status for p in facts.http] == [200, None]


def test_one_failing_section_is_recorded_and_the_rest_gathered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "file-nr"
    monkeypatch.setattr(local_source, "FILE_NR", str(missing))
    facts = gather_status(CollectConfig(), cpu_seconds=0.05)
    assert facts.fds is None
    assert facts.errors == {"fds": f"No such file or directory: {missing}"}
    assert facts.missing("fds") == f"No such file or directory: {missing}"
    assert facts.memory is not None and facts.processes is not None
    missing.write_text("garbage\n")
    facts = gather_status(CollectConfig(), cpu_seconds=0.05)
    assert facts.errors == {"fds": "file-nr: expected three integers, got 'garbage'"}


def test_gather_and_tools() -> None:
    values, errors = gather(
        {
            "fds": lambda: parse_file_nr(read_text("/proc/sys/fs/file-nr")),
            "broken": lambda: read_text("/proc"),
        }
    )
    assert list(values) == ["fds"] and errors == {"broken": "Is a directory: /proc"}
    with pytest.raises(ToolError, match=r"^no-such-tool-xj: not installed$"):
        run_tool(["no-such-tool-xj"])
    with pytest.raises(ToolError, match=r"^false: exit status 1$"):
        run_tool(["false"])
    with pytest.raises(ToolError, match=r"^sleep: no answer within 0\.2 s$"):
        run_tool(["sleep", "5"], timeout=0.2)
    assert run_tool(["sh", "-c", "echo $LC_ALL"]) == "C\n"


def test_host_identity() -> None:
    host = host_identity()
    assert host.hostname == socket.gethostname()
    assert host.kernel == os.uname().release and host.arch == os.uname().machine
    if Path("/etc/machine-id").is_file():
        assert host.machine_id == Path("/etc/machine-id").read_text().strip()
    release = Path("/etc/os-release")
    if release.is_file():
        assert host.os.id and host.os.id in release.read_text()
    loopback: List[str] = [a for a in host.addresses if a.startswith("127.") or a == "::1"]
    assert loopback == []
    assert host.boot_time == datetime.fromtimestamp(psutil.boot_time(), timezone.utc)
