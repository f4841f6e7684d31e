"""SSH transport for `xunjian ssh`: connect (through jump hosts), check host keys, run the probe.

Collector-side only (paramiko is in the `collector` extra); the agent daemon never imports this.
Host keys are checked on the bare Transport right after key exchange and before any credential
is offered, for the target and for every jump host under its own name, so a changed key never
sees a password or a signature. Jump hosts are chained with `direct-tcpip` channels, as
`ssh -J` does: the target's traffic is end-to-end encrypted, the jump host only forwards it.

Secrets (passwords, key passphrases) live in memory for the run only; they are never written,
logged or put into an error message.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import paramiko

from agent.sources.ssh_known_hosts import HostKeyError, KnownHosts

# Per-host errors are reported in the summary; paramiko's own tracebacks would only repeat them.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

DEFAULT_KEY_FILES = ("id_ed25519", "id_ecdsa", "id_rsa")
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
"""A probe printing more than this is cut off: log matches are capped per file long before."""

_TARGET = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\s\[\]@]+))(?::(?P<port>\d+))?$"
)


class SshError(Exception):
    """One host's failure, phrased for the summary table: what failed, where, and why."""

    kind = "error"


class ConnectError(SshError):
    kind = "connect"


class AuthError(SshError):
    kind = "auth"


class HostKeyRefused(SshError):
    kind = "hostkey"


class ProbeError(SshError):
    kind = "probe"


class SshTimeout(SshError):
    kind = "timeout"


@dataclass(frozen=True)
class Endpoint:
    """One hop: the name the user gave, and where it really goes (after ~/.ssh/config)."""

    alias: str
    host: str
    port: int = 22
    user: Optional[str] = None
    identity_files: Tuple[str, ...] = ()

    @property
    def label(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{name}:{self.port}"


def parse_target(text: str) -> Tuple[Optional[str], str, Optional[int]]:
    """'ops@db01:2222' → ('ops', 'db01', 2222); '[fe80::1]:22' for IPv6 addresses."""
    m = _TARGET.match(text.strip())
    if m is None:
        raise ValueError(f"not a host: {text!r} (expected [user@]host[:port])")
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port out of range in {text!r}")
    return m.group("user"), m.group("v6") or m.group("host"), port


def parse_jumps(text: Optional[str]) -> List[str]:
    """`-J a,b` → ['a', 'b']; 'none' (as in ssh_config) means no jump host."""
    if not text or text.strip().lower() == "none":
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


class SshConfig:
    """~/.ssh/config: Host, HostName, User, Port, IdentityFile and ProxyJump."""

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = path if path is not None else Path.home() / ".ssh" / "config"
        self._config = (
            paramiko.SSHConfig.from_path(str(self.path))
            if self.path.is_file()
            else paramiko.SSHConfig()
        )

    def endpoint(
        self,
        text: str,
        user: Optional[str] = None,
        port: Optional[int] = None,
        keys: Sequence[str] = (),
    ) -> Endpoint:
        """Resolve one `[user@]host[:port]`; what the user typed wins over the config file.

        Keys are tried in order: `keys` (-i, the inventory), the config's IdentityFile, then
        the default ~/.ssh/id_* files, as ssh does.
        """
        given_user, alias, given_port = parse_target(text)
        found = self._config.lookup(alias)
        configured = [os.path.expanduser(p) for p in found.get("identityfile", [])]
        files = [*keys, *configured, *default_key_files()]
        return Endpoint(
            alias=alias,
            host=str(found.get("hostname", alias)),
            port=given_port or port or int(found.get("port", 22)),
            user=given_user or user or found.get("user"),
            identity_files=tuple(dict.fromkeys(files)),
        )

    def proxy_jump(self, alias: str) -> List[str]:
        return parse_jumps(self._config.lookup(alias).get("proxyjump"))


@dataclass
class Route:
    """A target and the jump hosts in front of it, first hop first."""

    target: Endpoint
    jumps: List[Endpoint] = field(default_factory=list)
    sudo: bool = False

    @property
    def hops(self) -> List[Endpoint]:
        return [*self.jumps, self.target]


Prompt = Callable[[str], str]


def terminal_prompt(text: str) -> str:
    """Ask without echo (prompt on stderr, so --json output stays clean); kept for the run only."""
    import click

    return str(click.prompt(text.rstrip(": "), hide_input=True, err=True))


class Credentials:
    """Keys and an optional password for the run, loaded (and passphrases asked) up front."""

    def __init__(self, prompt: Prompt = terminal_prompt, use_agent: bool = True) -> None:
        self._prompt = prompt
        self._keys: Dict[str, paramiko.PKey] = {}
        self._failed: Dict[str, str] = {}
        self._lock = threading.Lock()
        self.password: Optional[str] = None
        self.agent_keys: List[paramiko.PKey] = []
        if use_agent and os.environ.get("SSH_AUTH_SOCK"):
            try:
                self.agent_keys = list(paramiko.Agent().get_keys())
            except paramiko.SSHException:
                self.agent_keys = []

    def ask_password(self, label: str = "SSH password") -> None:
        self.password = self._prompt(f"{label}: ")

    def load(self, path: str, required: bool) -> None:
        """Read a private key once; a passphrase is asked for on the terminal if it needs one."""
        with self._lock:
            if path in self._keys or path in self._failed:
                return
            if not os.path.exists(path):
                if required:
                    self._failed[path] = f"key file not found: {path}"
                return
            try:
                self._keys[path] = paramiko.PKey.from_path(path)
            except paramiko.PasswordRequiredException:
                passphrase = self._prompt(f"Passphrase for {path}: ")
                try:
                    self._keys[path] = paramiko.PKey.from_path(  # type: ignore[call-arg]  # stub lags paramiko 3.2
                        path, passphrase=passphrase.encode()
                    )
                except paramiko.SSHException:
                    self._failed[path] = f"wrong passphrase for {path}"
            except (paramiko.SSHException, OSError, ValueError) as exc:
                self._failed[path] = f"cannot read key {path}: {exc}"

    def keys_for(self, paths: Sequence[str]) -> List[Tuple[str, paramiko.PKey]]:
        found = [(p, self._keys[p]) for p in paths if p in self._keys]
        return found + [(f"agent key {k.get_name()}", k) for k in self.agent_keys]

    def problem(self, path: str) -> Optional[str]:
        return self._failed.get(path)


def default_key_files() -> List[str]:
    home = Path.home() / ".ssh"
    return [str(home / name) for name in DEFAULT_KEY_FILES]


@dataclass
class ProbeRun:
    """What came back from one host."""

    stdout: str
    stderr: str
    exit_status: int
    seconds: float


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() >= self.end - 0.05

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise SshTimeout(f"no answer within the {self.seconds:g} s per-host timeout")
        return left


class Connection:
    """A chain of transports, the last one to the target; closes them all."""

    def __init__(self) -> None:
        self.transports: List[paramiko.Transport] = []

    def close(self) -> None:
        for transport in reversed(self.transports):
            transport.close()


def _open_socket(hop: Endpoint, deadline: Deadline) -> socket.socket:
    try:
        return socket.create_connection((hop.host, hop.port), timeout=deadline.left())
    except socket.gaierror as exc:
        raise ConnectError(f"{hop.label}: unknown host ({exc.strerror})") from None
    except ConnectionRefusedError:
        raise ConnectError(f"{hop.label}: connection refused") from None
    except socket.timeout:
        raise SshTimeout(f"{hop.label}: connection timed out") from None
    except OSError as exc:
        raise ConnectError(f"{hop.label}: cannot connect: {exc.strerror or exc}") from None


def _through(previous: paramiko.Transport, hop: Endpoint, deadline: Deadline) -> paramiko.Channel:
    try:
        return previous.open_channel(
            "direct-tcpip", (hop.host, hop.port), ("127.0.0.1", 0), timeout=deadline.left()
        )
    except paramiko.ChannelException as exc:
        raise ConnectError(
            f"{hop.label}: the jump host could not connect to it ({exc.text})"
        ) from None
    except paramiko.SSHException as exc:
        raise ConnectError(f"{hop.label}: the jump host refused forwarding ({exc})") from None


def _handshake(
    sock: "socket.socket | paramiko.Channel",
    hop: Endpoint,
    known_hosts: KnownHosts,
    deadline: Deadline,
) -> paramiko.Transport:
    """Key exchange and the host key check; nothing about the user has been sent yet."""
    transport = paramiko.Transport(sock)
    transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = (
        deadline.left()
    )
    options = transport.get_security_options()
    options.key_types = known_hosts.preferred_algorithms(hop.host, hop.port, options.key_types)
    try:
        transport.start_client(timeout=deadline.left())
        # start_client returns quietly when its timeout passes; this raises then.
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        if deadline.expired() or "timeout" in str(exc).lower():
            raise SshTimeout(f"{hop.label}: SSH handshake timed out (no answer)") from None
        raise ConnectError(
            f"{hop.label}: SSH handshake failed: {exc or type(exc).__name__}"
        ) from None
    try:
        known_hosts.verify(hop.host, hop.port, key.get_name(), key.asbytes())
    except HostKeyError as exc:
        transport.close()
        raise HostKeyRefused(str(exc)) from None
    return transport


def _authenticate(transport: paramiko.Transport, hop: Endpoint, creds: Credentials) -> None:
    user = hop.user or getpass.getuser()
    tried: List[str] = []
    for name, key in creds.keys_for(hop.identity_files):
        try:
            transport.auth_publickey(user, key)
            return
        except paramiko.BadAuthenticationType as exc:
            tried.append(f"publickey not allowed (server allows {', '.join(exc.allowed_types)})")
            break
        except paramiko.AuthenticationException:
            tried.append(f"key {name}")
        except paramiko.SSHException as exc:
            raise AuthError(f"{hop.label}: authentication broke off: {exc}") from None
    if creds.password is not None:
        password = creds.password
        try:
            transport.auth_password(user, password)
            return
        except paramiko.BadAuthenticationType as exc:
            if "keyboard-interactive" in exc.allowed_types:
                try:
                    transport.auth_interactive(
                        user, lambda _t, _i, prompts: [password for _ in prompts]
                    )
                    return
                except paramiko.AuthenticationException:
                    pass
            tried.append("password")
        except paramiko.AuthenticationException:
            tried.append("password")
    problems = [p for p in (creds.problem(f) for f in hop.identity_files) if p]
    detail = (
        "; ".join(tried + problems) or "no key or password to offer (use -i KEY or --ask-password)"
    )
    raise AuthError(f"{hop.label}: authentication failed for user {user!r} (tried: {detail})")


def connect(
    route: Route,
    known_hosts: KnownHosts,
    creds: Credentials,
    deadline: Deadline,
    connection: Connection,
) -> paramiko.Transport:
    """Open the chain hop by hop; each hop's key is checked under its own name."""
    previous: Optional[paramiko.Transport] = None
    for hop in route.hops:
        sock = (
            _open_socket(hop, deadline) if previous is None else _through(previous, hop, deadline)
        )
        transport = _handshake(sock, hop, known_hosts, deadline)
        connection.transports.append(transport)
        _authenticate(transport, hop, creds)
        previous = transport
    assert previous is not None
    return previous


def run_probe(
    transport: paramiko.Transport, script: str, sudo: bool, deadline: Deadline, label: str
) -> ProbeRun:
    """`sh -s` (or `sudo -n sh -s`) with the script on stdin; stdout is read to EOF."""
    started = time.monotonic()
    try:
        channel = transport.open_session(timeout=deadline.left())
        channel.settimeout(deadline.left())
        channel.exec_command("sudo -n sh -s" if sudo else "sh -s")
        channel.sendall(script.encode("utf-8"))
        channel.shutdown_write()
        chunks: List[bytes] = []
        size = 0
        while True:
            channel.settimeout(deadline.left())
            data = channel.recv(1 << 16)
            if not data:
                break
            size += len(data)
            if size > MAX_OUTPUT_BYTES:
                raise ProbeError(
                    f"{label}: probe output over {MAX_OUTPUT_BYTES >> 20} MiB, stopped"
                )
            chunks.append(data)
        stderr = b""
        while channel.recv_stderr_ready():
            stderr += channel.recv_stderr(1 << 16)
        status = channel.recv_exit_status()
    except socket.timeout:
        raise SshTimeout(f"{label}: the probe did not finish within the per-host timeout") from None
    except paramiko.SSHException as exc:
        raise ProbeError(f"{label}: {exc}") from None
    return ProbeRun(
        stdout=b"".join(chunks).decode("utf-8", "replace"),
        stderr=stderr.decode("utf-8", "replace").strip(),
        exit_status=status,
        seconds=time.monotonic() - started,
    )
