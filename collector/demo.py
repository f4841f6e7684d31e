"""`make demo`: the whole flow on this machine, offline, on the embedded default (SQLite).

A collector on loopback, the example contract (with this machine added to its hosts), this
machine enrolled, inspected by the agent and shipped; the quarter's report built in Chinese and
English and mailed to a local SMTP server (aiosmtpd) that saves each message under demo-out/.
Every step is the real command an operator would type, run as a subprocess.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import date, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Dict, List, Optional

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from rich.console import Console

from collector import periods
from collector.contracts import load_contract

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "demo-out"
CONTRACT_NO = "HT-2026-001"
AGENT_SECONDS = 20
console = Console(stderr=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SaveToFolder:
    """aiosmtpd handler: every accepted message becomes an .eml file in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saved: List[Path] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        msg = message_from_bytes(data)
        name = f"{len(self.saved) + 1:02d}-{_slug(msg)}.eml"
        path = self.folder / name
        path.write_bytes(data)
        self.saved.append(path)
        return "250 Message accepted for delivery"


def _slug(msg: Message) -> str:
    lang = "en" if "Inspection" in str(msg.get("Subject", "")) else "zh"
    return f"report-{lang}"


def step(text: str) -> None:
    console.print(f"[bold cyan]▶[/] {text}")


def run(
    argv: List[str], env: Dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT)
    if check and proc.returncode != 0:
        console.print(
            f"[red]{' '.join(argv)} failed ({proc.returncode})[/]\n{proc.stdout}{proc.stderr}"
        )
        raise SystemExit(1)
    return proc


def demo_contract(path: Path, hostname: str) -> Path:
    """The example contract with this machine under it, so the report has a host with data."""
    text = (ROOT / "config/contracts/example.toml").read_text(encoding="utf-8")
    year = date.today().year  # the example's term is 2026; the demo's is always this year
    text = re.sub(r"(?m)^start = \d{4}-01-01", f"start = {year}-01-01", text)
    text = re.sub(r"(?m)^end = \d{4}-12-31", f"end = {year}-12-31", text)
    marker = "[[hosts]]"
    extra = f'[[hosts]]\nhostname = "{hostname}"   # 本机（演示）/ this machine (demo)\n\n'
    path.write_text(text.replace(marker, extra + marker, 1), encoding="utf-8")
    load_contract(path)  # refuse to go on with a contract the collector would refuse
    return path


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"xunjian serve exited with {proc.returncode}; see {OUT / 'collector.log'}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"xunjian serve did not answer on {url} within {seconds:.0f} s")


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    mail_dir = OUT / "mail"
    mail_dir.mkdir(parents=True)
    bin_dir = Path(sys.executable).parent
    xunjian, agent = str(bin_dir / "xunjian"), str(bin_dir / "xunjian-agent")

    smtp_port, api_port = free_port(), free_port()
    handler = SaveToFolder(mail_dir)
    smtp = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    url = f"http://127.0.0.1:{api_port}"
    env = {
        **os.environ,
        "XUNJIAN_HOME": str(OUT / "var"),
        "XUNJIAN_LISTEN": f"127.0.0.1:{api_port}",
        "XUNJIAN_PUBLIC_URL": url,
        "XUNJIAN_SMTP_HOST": "127.0.0.1",
        "XUNJIAN_SMTP_PORT": str(smtp_port),
        "XUNJIAN_SMTP_SECURITY": "none",
        "XUNJIAN_SMTP_FROM": "xunjian@vendor.example",
        "XUNJIAN_AGENT_STATE_DIR": str(OUT / "agent"),
        "XUNJIAN_AGENT_ALLOW_INSECURE": "true",  # plain http on loopback only
    }
    server: Optional[subprocess.Popen[bytes]] = None
    try:
        hostname = socket.gethostname()
        step(f"contract {CONTRACT_NO} with this machine ({hostname}) under it")
        contract_file = demo_contract(OUT / "contract.toml", hostname)
        run([xunjian, "db", "upgrade"], env)
        run([xunjian, "contract", "import", str(contract_file)], env)

        step(f"collector on {url} (SQLite in {OUT / 'var'})")
        log = (OUT / "collector.log").open("wb")
        server = subprocess.Popen([xunjian, "serve"], env=env, stdout=log, stderr=log, cwd=ROOT)
        wait_ready(url, server)

        step("enroll this machine with a single-use token")
        token = run([xunjian, "token", "create", "--contract", CONTRACT_NO], env).stdout.strip()
        run([agent, "enroll", url, "--token", token], env)

        step(f"run the agent for {AGENT_SECONDS} s with 1 s sampling, so the report has history")
        daemon_env = {
            **env,
            "XUNJIAN_AGENT_SAMPLE_INTERVAL": "1",
            "XUNJIAN_AGENT_HEARTBEAT_INTERVAL": "2",
            "XUNJIAN_AGENT_FLUSH_INTERVAL": "5",
        }
        daemon = subprocess.Popen([agent, "run"], env=daemon_env, stdout=log, stderr=log, cwd=ROOT)
        time.sleep(AGENT_SECONDS)
        daemon.terminate()
        daemon.wait(timeout=30)

        step("inspect this machine and ship the run (xunjian-agent inspect --ship)")
        inspected = run([agent, "inspect", "--ship", "--lang", "zh"], env, check=False)
        (OUT / "inspection.txt").write_text(inspected.stdout, encoding="utf-8")
        if inspected.returncode not in (0, 1, 2, 3):
            console.print(inspected.stdout + inspected.stderr)
            raise SystemExit("the inspection was not delivered")

        contract = load_contract(contract_file)
        current = periods.containing(contract, datetime.now(contract.tz))
        if current is None:
            raise SystemExit(f"today is outside the term of contract {CONTRACT_NO}")
        period = current.key
        reports = OUT / "reports"
        for lang in ("zh", "en"):
            step(f"build the {period} report in {lang} and send it")
            run(
                [
                    xunjian,
                    "report",
                    "build",
                    "--contract",
                    CONTRACT_NO,
                    "--period",
                    period,
                    "--lang",
                    lang,
                    "--out",
                    str(reports / lang),
                    "--send",
                ],
                env,
            )
        deadline = time.monotonic() + 60
        while len(handler.saved) < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        smtp.stop()

    console.print()
    console.print("[bold green]demo finished[/]")
    for path in sorted(reports.rglob("*")):
        if path.suffix in (".pdf", ".html"):
            print(f"{path.suffix[1:].upper():5} {path.relative_to(ROOT)}")
    for path in handler.saved:
        print(f"EML   {path.relative_to(ROOT)}")
    print(f"TEXT  {(OUT / 'inspection.txt').relative_to(ROOT)}")
    if len(handler.saved) < 2:
        raise SystemExit("not every report e-mail arrived at the local SMTP server")


if __name__ == "__main__":
    main()
