"""SSH inspection of 50 hosts: `xunjian ssh` vs `ansible all -m setup` vs a bare paramiko loop.

Starts 50 OpenSSH servers on loopback (the test fixture's SshLab: own host keys, one user key),
then times, side by side in one run:

- `xunjian ssh` over all 50 (--parallel 50), the full probe + parsing + evaluation;
- `ansible all -m setup -f 50` (ansible-core from PyPI in a throwaway venv under bench/out/;
  not a project dependency) and, for reference, `ansible all -m shell -a uptime -f 50`;
- a bare paramiko thread pool (50 threads) running six read-only commands per host.

Peak RSS of each controller comes from wait4() on its process. Needs root (the servers log in
as root). Run: `.venv/bin/python bench/ssh_bench.py` (prints Markdown for docs/benchmarks.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ssh.conftest import Sshd, SshLab  # noqa: E402  (the same servers the tests use)

OUT = ROOT / "bench" / "out"
HOSTS = 50
SIX_COMMANDS = (
    "cat /proc/loadavg",
    "cat /proc/meminfo",
    "df -P -k",
    "head -1 /proc/stat",
    "cat /proc/uptime",
    "ss -ltn",
)


def measure(argv: Sequence[str], env: Dict[str, str]) -> Tuple[float, float, int]:
    """(wall seconds, peak RSS MiB of the process tree's largest member, exit status)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if proc.stderr is not None:
        err = proc.stderr.read().decode(errors="replace")
        if os.waitstatus_to_exitcode(status) > 3:
            print(err[-2000:], file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def ansible_venv() -> Path:
    venv = OUT / "ansible-venv"
    if not (venv / "bin" / "ansible").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "ansible-core"], check=True)
    return venv


def ansible_inventory(lab: SshLab, servers: List[Sshd], known: Path) -> Path:
    lines = ["[all]"]
    for i, s in enumerate(servers):
        lines.append(f"h{i} ansible_host=127.0.0.1 ansible_port={s.port} ansible_user=root")
    lines += [
        "[all:vars]",
        f"ansible_ssh_private_key_file={lab.user_key}",
        f"ansible_ssh_common_args='-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes'",
        "ansible_python_interpreter=/usr/bin/python3",
    ]
    path = OUT / "ansible-inventory.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def bare_paramiko(lab: SshLab, servers: List[Sshd], known: Path) -> float:
    import paramiko

    def one(server: Sshd) -> None:
        client = paramiko.SSHClient()
        client.load_host_keys(str(known))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            "127.0.0.1", server.port, "root", key_filename=str(lab.user_key),
            look_for_keys=False, allow_agent=False, timeout=60,
        )  # fmt: skip
        try:
            for command in SIX_COMMANDS:
                _, stdout, _ = client.exec_command(command)
                stdout.read()
        finally:
            client.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        list(pool.map(one, servers))
    return time.perf_counter() - started


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    os.makedirs("/run/sshd", exist_ok=True)
    lab_root = OUT / f"ssh-lab-{os.getpid()}"
    lab_root.mkdir()
    lab = SshLab(lab_root)
    try:
        servers = [lab.start(f"h{i}", log_level="ERROR") for i in range(HOSTS)]
        known = lab.known_hosts(servers)
        env = {**os.environ, "HOME": str(lab.home), "LANG": "C.UTF-8"}
        env.pop("SSH_AUTH_SOCK", None)
        venv = ansible_venv()
        inventory = ansible_inventory(lab, servers, known)
        xunjian = [
            str(ROOT / ".venv" / "bin" / "xunjian"), "ssh",
            *[f"root@127.0.0.1:{s.port}" for s in servers],
            "-i", str(lab.user_key), "--known-hosts", str(known),
            "--parallel", str(HOSTS), "--json", "--lang", "en",
        ]  # fmt: skip
        ansible_env = {**env, "ANSIBLE_FORKS": str(HOSTS), "ANSIBLE_GATHERING": "explicit"}
        setup = [
            str(venv / "bin" / "ansible"),
            "all",
            "-i",
            str(inventory),
            "-m",
            "setup",
            "-f",
            str(HOSTS),
        ]
        shell = [
            str(venv / "bin" / "ansible"),
            "all",
            "-i",
            str(inventory),
            "-m",
            "shell",
            "-a",
            "uptime",
            "-f",
            str(HOSTS),
        ]

        measure(xunjian, env)  # warm the page cache and the servers once
        x_wall, x_rss, x_code = measure(xunjian, env)
        s_wall, s_rss, s_code = measure(setup, ansible_env)
        h_wall, h_rss, h_code = measure(shell, ansible_env)
        p_wall = bare_paramiko(lab, servers, known)
    finally:
        lab.stop()
    rows = [
        (
            "`xunjian ssh` (probe, parse, evaluate; --parallel 50)",
            x_wall,
            f"{x_rss:.0f} MiB",
            x_code,
        ),
        ("`ansible all -m setup -f 50`", s_wall, f"{s_rss:.0f} MiB", s_code),
        ("`ansible all -m shell -a uptime -f 50`", h_wall, f"{h_rss:.0f} MiB", h_code),
        ("bare paramiko, 50 threads × six commands", p_wall, "(in-process)", 0),
    ]
    for name, wall, rss, code in rows:
        print(f"| {name} | {wall:.1f} s | {rss} | exit {code} |")
    print(
        f"\nxunjian / ansible setup = {x_wall / s_wall:.2f}; xunjian / paramiko = {x_wall / p_wall:.2f}"
    )


if __name__ == "__main__":
    main()
