"""`xunjian ssh` against real OpenSSH servers on loopback (see conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest
from click.testing import CliRunner, Result

from agent.sources.ssh import (
    Connection,
    Credentials,
    Deadline,
    Route,
    SshConfig,
    connect,
    run_probe,
)
from agent.sources.ssh_known_hosts import KnownHosts
from agent.sources.ssh_probe import ProbePlan, new_nonce
from checks.model import InspectionRun, Severity, Source, worst
from checks.parsers.probe import split_sections
from collector.cli import main
from tests.ssh.conftest import PASSWORD, Sshd, SshLab, free_port, keygen

pytestmark = [pytest.mark.py311, pytest.mark.services]


def xunjian_ssh(lab: SshLab, args: Sequence[str], stdin: Optional[str] = None) -> Result:
    runner = CliRunner(env=lab.env())
    return runner.invoke(main, ["ssh", "--lang", "en", *args], input=stdin, catch_exceptions=False)


def target(server: Sshd, user: str = "root") -> str:
    return f"{user}@127.0.0.1:{server.port}"


def runs_of(result: Result) -> List[InspectionRun]:
    return [InspectionRun.model_validate_json(line) for line in result.stdout.splitlines() if line]


def exit_code_of(result: Result, failed: int) -> int:
    """The exit code the command owes: its runs' worst and an unknown for each host it could not
    inspect, the worst by rank — a warning outranks an unknown, whose code (3) is the larger."""
    return worst([*(r.worst() for r in runs_of(result)), *[Severity.unknown] * failed]).exit_code


def sha256(public_line: str) -> str:
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def test_ten_hosts_at_once(lab: SshLab, hosts: List[Sshd]) -> None:
    known = lab.known_hosts(hosts)
    args = [target(h) for h in hosts]
    result = xunjian_ssh(
        lab,
        [*args, "-i", str(lab.user_key), "--known-hosts", str(known), "--json", "--parallel", "10"],
    )
    runs = runs_of(result)
    assert len(runs) == 10, result.stderr
    assert len({r.run_id for r in runs}) == 10
    for run in runs:
        assert run.source == Source.ssh
        assert run.facts.cpu is not None and run.facts.memory is not None
        assert run.facts.logs is not None and run.facts.filesystems
        assert {r.check for r in run.results} >= {"cpu.usage", "disk.usage", "uptime"}
    assert "10 inspected, 0 failed" in result.stderr
    assert result.exit_code == exit_code_of(result, failed=0)


def test_chain_of_two_jump_hosts(lab: SshLab, hosts: List[Sshd]) -> None:
    j1 = lab.start("jump1", log_level="DEBUG1")
    j2 = lab.start("jump2", log_level="DEBUG1")
    end = hosts[0]
    known = lab.known_hosts([j1, j2, end], "known_jumps")
    result = xunjian_ssh(
        lab,
        [
            target(end),
            "-J",
            f"{target(j1)},{target(j2)}",
            "-i",
            str(lab.user_key),
            "--known-hosts",
            str(known),
            "--json",
        ],
    )
    assert len(runs_of(result)) == 1, result.stderr
    # Each jump host was asked to forward to the next hop: the chain was really used.
    assert re.search(rf"direct.tcpip.*127\.0\.0\.1 port {j2.port}\b", j1.log_text())
    assert re.search(rf"direct.tcpip.*127\.0\.0\.1 port {end.port}\b", j2.log_text())


def test_jump_host_key_is_checked_under_its_own_name(lab: SshLab, hosts: List[Sshd]) -> None:
    j1 = lab.start("jump_unknown")
    known = lab.known_hosts([hosts[0]], "known_without_jump")  # the target is known, the jump not
    result = xunjian_ssh(
        lab,
        [target(hosts[0]), "-J", target(j1), "-i", str(lab.user_key), "--known-hosts", str(known)],
    )
    assert result.exit_code == 3
    assert f"host key for 127.0.0.1:{j1.port} is unknown" in result.stdout
    assert sha256(j1.host_key_line) in result.stdout.replace("\n", "").replace("│", "").replace(
        " ", ""
    )


def wait_for(server: Sshd, pattern: str, seconds: float = 10.0) -> str:
    """The server's log once `pattern` appears in it (sshd writes after the client is gone)."""
    deadline = time.monotonic() + seconds
    while True:
        log = server.log_text()
        if re.search(pattern, log) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def _flat(text: str) -> str:
    """The summary table wraps long errors over cells; join them back for searching."""
    return re.sub(r"[\s│┃]+", "", text)


def test_changed_key_refused_before_authentication(lab: SshLab) -> None:
    server = lab.start("changed")
    impostor = keygen(lab.root / "impostor_key")
    known = lab.root / "known_changed"
    known.write_text(f"# first line\n[127.0.0.1]:{server.port} {impostor}\n")
    result = xunjian_ssh(
        lab, [target(server), "-i", str(lab.user_key), "--known-hosts", str(known), "--json"]
    )
    assert result.exit_code == 3 and result.stdout == ""
    flat = _flat(result.stderr)
    assert "hostkeyfor127.0.0.1:" + str(server.port) + "hasCHANGED" in flat
    assert sha256(impostor) in flat  # expected (pinned)
    assert sha256(server.host_key_line) in flat  # offered
    assert f"{known}:2" in flat  # the known_hosts line to look at
    # The server saw the connection end before any authentication request (sshd logs the
    # close once it has processed it; wait for that line rather than racing it).
    log = wait_for(server, r"Connection closed by 127\.0\.0\.1 port \d+ \[preauth\]")
    assert not re.search(r"Accepted|Failed|Postponed|userauth|publickey|password", log), log


def test_unknown_key_refused_then_pinned_with_accept_new(lab: SshLab) -> None:
    server = lab.start("newcomer")
    known = lab.root / "known_new"
    known.write_text("")
    common = [target(server), "-i", str(lab.user_key), "--known-hosts", str(known), "--json"]
    refused = xunjian_ssh(lab, common)
    assert refused.exit_code == 3 and refused.stdout == ""
    assert "unknown" in refused.stderr and sha256(server.host_key_line) in _flat(refused.stderr)
    assert known.read_text() == ""

    accepted = xunjian_ssh(lab, [*common, "--accept-new"])
    assert len(runs_of(accepted)) == 1, accepted.stderr
    assert known.read_text() == f"[127.0.0.1]:{server.port} {server.host_key_line}\n"

    again = xunjian_ssh(lab, common)  # pinned: no --accept-new needed any more
    assert len(runs_of(again)) == 1, again.stderr


def test_wrong_password_and_closed_port_fail_alone(
    lab: SshLab, hosts: List[Sshd], password_user: str
) -> None:
    pw = lab.start("password", password=True)
    closed = free_port()
    known = lab.known_hosts([pw, *hosts[:2]], "known_pw")
    names = [f"{password_user}@127.0.0.1:{pw.port}", f"root@127.0.0.1:{closed}"]
    names += [target(h) for h in hosts[:2]]
    common = [
        *names,
        "-i",
        str(lab.user_key),
        "--known-hosts",
        str(known),
        "--json",
        "--ask-password",
    ]
    result = xunjian_ssh(lab, common, stdin="not-the-password\n")
    assert len(runs_of(result)) == 2, result.stderr
    flat = _flat(result.stderr)
    assert f"127.0.0.1:{pw.port}:authenticationfailedforuser'{password_user}'" in flat
    assert f"127.0.0.1:{closed}:connectionrefused" in flat
    assert "2inspected,2failed" in flat
    assert result.exit_code == exit_code_of(result, failed=2)
    assert "not-the-password" not in result.stdout + result.stderr

    right = xunjian_ssh(
        lab, [names[0], "--known-hosts", str(known), "--json", "--ask-password"], PASSWORD + "\n"
    )
    assert len(runs_of(right)) == 1, right.stderr
    assert PASSWORD not in right.stdout + right.stderr


def _probe_over_ssh(lab: SshLab, server: Sshd) -> str:
    config = SshConfig(lab.root / "no_ssh_config")
    route = Route(config.endpoint(target(server), keys=[str(lab.user_key)]))
    creds = Credentials(use_agent=False)
    creds.load(str(lab.user_key), required=True)
    known = KnownHosts([lab.known_hosts([server], f"known_{server.name}")], lab.root / "unused")
    connection = Connection()
    plan = ProbePlan(window=_window())
    nonce = new_nonce()
    try:
        deadline = Deadline(60)
        transport = connect(route, known, creds, deadline, connection)
        output = run_probe(transport, plan.script(nonce), False, deadline, server.name).stdout
    finally:
        connection.close()
    info = split_sections(output, nonce).info
    return info["shell"]


def _window():  # type: ignore[no-untyped-def]
    from agent.window import make_window

    return make_window("24h")


@pytest.mark.parametrize("shell", ["dash", "busybox"])
def test_probe_runs_under_dash_and_busybox_over_ssh(lab: SshLab, shell: str) -> None:
    command = "/usr/bin/dash -s" if shell == "dash" else "/usr/bin/busybox sh -s"
    server = lab.start(f"forced_{shell}", force_command=command)
    assert _probe_over_ssh(lab, server).endswith(f"/{shell}")


def test_inventory_sudo_runs_the_probe_through_sudo(
    lab: SshLab, hosts: List[Sshd], tmp_path: Path
) -> None:
    """`sudo: true` in the inventory runs `sudo -n sh -s`; without sudo on the host that is a
    clear per-host error, never a silent run without privileges."""
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        f"- address: 127.0.0.1\n  port: {hosts[3].port}\n  user: root\n  sudo: true\n"
        "  hostname: db01\n"
    )
    known = lab.known_hosts([hosts[3]], "known_sudo")
    result = xunjian_ssh(
        lab,
        [
            "--inventory",
            str(inventory),
            "-i",
            str(lab.user_key),
            "--known-hosts",
            str(known),
            "--json",
        ],
    )
    flat = _flat(result.stderr)
    assert "db01" in flat
    if shutil.which("sudo"):
        assert len(runs_of(result)) == 1, result.stderr
    else:
        assert result.exit_code == 3 and runs_of(result) == []
        assert "theprobedidnotrun(exit127)" in flat and "sudo" in flat


def test_output_dir_writes_one_file_per_host(
    lab: SshLab, hosts: List[Sshd], tmp_path: Path
) -> None:
    known = lab.known_hosts(hosts[:2], "known_out")
    out = tmp_path / "runs"
    result = xunjian_ssh(
        lab,
        [
            target(hosts[0]),
            target(hosts[1]),
            "-i",
            str(lab.user_key),
            "--known-hosts",
            str(known),
            "--output",
            str(out),
        ],
    )
    files = sorted(out.glob("*.json"))
    assert len(files) == 2, result.output
    hosts_seen: Dict[str, InspectionRun] = {
        f.name: InspectionRun.model_validate_json(f.read_text()) for f in files
    }
    assert all(run.source == Source.ssh for run in hosts_seen.values())
    assert json.loads(files[0].read_text())["schema"] >= 1


def test_a_silent_host_times_out_without_holding_up_the_others(
    lab: SshLab, hosts: List[Sshd]
) -> None:
    """A port that accepts the connection but never says a word (a hung sshd, a tarpit)."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    port = silent.getsockname()[1]
    known = lab.known_hosts(hosts[:2], "known_silent")
    names = [f"root@127.0.0.1:{port}", target(hosts[0]), target(hosts[1])]
    try:
        started = time.monotonic()
        result = xunjian_ssh(
            lab,
            [
                *names,
                "-i",
                str(lab.user_key),
                "--known-hosts",
                str(known),
                "--json",
                "--timeout",
                "4",
            ],
        )
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert len(runs_of(result)) == 2, result.stderr
    assert result.exit_code == exit_code_of(result, failed=1)
    flat = _flat(result.stderr)
    assert f"127.0.0.1:{port}" in flat and ("timedout" in flat or "within4s" in flat)
    assert elapsed < 4 + 10  # the deadline, plus the others' own time — never a hang


def test_known_hosts_hashed_names_patterns_and_negation(tmp_path: Path) -> None:
    import hmac

    blob = base64.b64decode(keygen(tmp_path / "k").split()[1])
    salt = b"0123456789abcdef0123"
    digest = hmac.new(salt, b"[db01]:2222", hashlib.sha1).digest()
    hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    line_key = f"ssh-ed25519 {base64.b64encode(blob).decode()}"
    known = tmp_path / "known"
    known.write_text(f"{hashed} {line_key}\n*.example.com,!bastion.example.com {line_key}\n")
    hosts_file = KnownHosts([known], known)
    assert hosts_file.verify("db01", 2222, "ssh-ed25519", blob) is not None
    assert hosts_file.verify("web.example.com", 22, "ssh-ed25519", blob) is not None
    with pytest.raises(Exception, match="unknown"):
        hosts_file.verify("bastion.example.com", 22, "ssh-ed25519", blob)
    with pytest.raises(Exception, match="CHANGED"):
        hosts_file.verify("db01", 2222, "ssh-ed25519", blob[:-1] + bytes([blob[-1] ^ 0xFF]))
