"""Real OpenSSH servers on loopback for the SSH-mode tests.

Each server is `/usr/sbin/sshd -D -f <config>` with its own temporary ed25519 host key, on a free
127.0.0.1 port, logging to its own file (tests read it to see what the server was asked to
do). Clients use a temporary user key and a private HOME, so the engineer's real ~/.ssh is
never read or written.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from tests.conftest import require_service

SSHD = "/usr/sbin/sshd"
PASSWORD_USER = "xjtest"
PASSWORD = "Correct-Horse-9"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519") -> str:
    """A new key pair without passphrase; returns the public line `type base64`."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True, capture_output=True
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


@dataclass
class Sshd:
    name: str
    port: int
    host_key_line: str
    log: Path
    proc: "subprocess.Popen[bytes]"

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key_line}\n"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


class SshLab:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        (self.home / ".ssh").mkdir(parents=True)
        self.user_key = root / "user_key"
        self.user_pub = keygen(self.user_key)
        self.authorized = root / "authorized_keys"
        self.authorized.write_text(self.user_pub + "\n")
        self.no_keys = root / "no_keys"
        self.no_keys.write_text("")
        self.servers: List[Sshd] = []

    def start(
        self,
        name: str,
        *,
        password: bool = False,
        force_command: Optional[str] = None,
        log_level: str = "VERBOSE",
    ) -> Sshd:
        base = self.root / name
        base.mkdir()
        host_line = keygen(base / "host_key")
        port = free_port()
        options: Dict[str, str] = {
            "Port": str(port),
            "ListenAddress": "127.0.0.1",
            "HostKey": str(base / "host_key"),
            "PidFile": "none",
            "AuthorizedKeysFile": str(self.no_keys if password else self.authorized),
            "PermitRootLogin": "yes",
            "StrictModes": "no",
            "UsePAM": "no",
            "PasswordAuthentication": "yes" if password else "no",
            "KbdInteractiveAuthentication": "no",
            "AllowTcpForwarding": "yes",
            "X11Forwarding": "no",
            "PrintMotd": "no",
            "MaxStartups": "200",
            "MaxSessions": "50",
            "LogLevel": log_level,
        }
        if force_command:
            options["ForceCommand"] = force_command
        config = base / "sshd_config"
        config.write_text("".join(f"{k} {v}\n" for k, v in options.items()))
        log = base / "sshd.log"
        proc = subprocess.Popen(
            [SSHD, "-D", "-f", str(config), "-E", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _wait_listening(port, proc)
        server = Sshd(name, port, host_line, log, proc)
        self.servers.append(server)
        return server

    def known_hosts(self, servers: List[Sshd], name: str = "known_hosts") -> Path:
        path = self.root / name
        path.write_text("".join(s.known_hosts_line() for s in servers))
        return path

    def env(self) -> Dict[str, Optional[str]]:
        # A wide console keeps each summary row on one line for the assertions.
        return {
            "HOME": str(self.home),
            "SSH_AUTH_SOCK": None,
            "LANG": "C.UTF-8",
            "LC_ALL": None,
            "COLUMNS": "400",
        }

    def stop(self) -> None:
        for server in self.servers:
            server.proc.terminate()
        for server in self.servers:
            try:
                server.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.proc.kill()


def _wait_listening(port: int, proc: "subprocess.Popen[bytes]") -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"sshd exited with {proc.returncode}: {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on {port}")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshLab]:
    require_service(os.path.exists(SSHD), f"{SSHD} not installed (Debian openssh-server)")
    require_service(shutil.which("ssh-keygen") is not None, "ssh-keygen not installed")
    require_service(os.geteuid() == 0, "sshd test servers need root (they log in as root)")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    lab = SshLab(tmp_path_factory.mktemp("ssh"))
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="session")
def hosts(lab: SshLab) -> List[Sshd]:
    """Ten plain servers; tests share them (each run is read-only)."""
    return [lab.start(f"host{i}") for i in range(10)]


@pytest.fixture(scope="session")
def password_user() -> Iterator[str]:
    """A local user with a known password (root's is unknown), removed afterwards."""
    require_service(shutil.which("useradd") is not None, "useradd not available")
    created = subprocess.run(["id", PASSWORD_USER], capture_output=True).returncode != 0
    if created:
        subprocess.run(["useradd", "-M", "-s", "/bin/sh", PASSWORD_USER], check=True)
    subprocess.run(["chpasswd"], input=f"{PASSWORD_USER}:{PASSWORD}\n".encode(), check=True)
    try:
        yield PASSWORD_USER
    finally:
        if created:
            subprocess.run(["userdel", PASSWORD_USER], capture_output=True)
