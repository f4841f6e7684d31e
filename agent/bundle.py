"""`make bundle` / `python -m agent.bundle`: an offline installer for air-gapped customer hosts.

Produces dist/xunjian-agent-<version>-<platform>.tar.gz holding a wheelhouse (the xunjian wheel
and every dependency), install.sh, uninstall.sh, the example config, the systemd unit and
docs/agent.md. On the target, install.sh needs only python3 (>= 3.9, with venv) and no network.

By default the wheels match the Python running this command. For another target, name its
interpreter and platform, and pip downloads binary wheels for it instead of building::

    python -m agent.bundle --python-version 3.9 --platform manylinux2014_x86_64
    python -m agent.bundle --python-version 3.9 --platform manylinux2014_aarch64
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path
from typing import List, Optional

from agent import __version__
from agent.config import read_toml

ROOT = Path(__file__).resolve().parent.parent

INSTALL_SH = r"""#!/bin/sh
# xunjian-agent offline installer: venv in /opt/xunjian-agent from the bundled wheels (no network),
# the xunjian system user, /etc/xunjian/agent.toml (kept if present) and the systemd unit.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/opt/xunjian-agent
PYTHON=${PYTHON:-python3}
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
  || { echo "install.sh: $PYTHON is older than 3.9; set PYTHON=/path/to/python3.9+" >&2; exit 1; }
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
  || { echo "install.sh: $PYTHON lacks venv (Debian: apt install python3-venv)" >&2; exit 1; }
if ! id xunjian >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/xunjian --no-create-home --shell /usr/sbin/nologin xunjian
fi
rm -rf "$PREFIX/venv"
"$PYTHON" -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --quiet --no-index --find-links "$HERE/wheelhouse" xunjian
install -d -m 0755 "$PREFIX/docs" && install -m 0644 "$HERE/docs/agent.md" "$PREFIX/docs/agent.md"
install -d -o xunjian -g xunjian -m 0700 /var/lib/xunjian
install -d -m 0755 /etc/xunjian
if [ ! -f /etc/xunjian/agent.toml ]; then
  install -m 0640 -g xunjian "$HERE/agent.example.toml" /etc/xunjian/agent.toml
fi
install -m 0644 "$HERE/xunjian-agent.service" /etc/systemd/system/xunjian-agent.service
[ -d /run/systemd/system ] && systemctl daemon-reload || true
echo "installed xunjian-agent $(cat "$HERE/VERSION") in $PREFIX"
echo "next: runuser -u xunjian -- $PREFIX/venv/bin/xunjian-agent enroll URL --token TOKEN"
echo "      systemctl enable --now xunjian-agent"
"""

UNINSTALL_SH = r"""#!/bin/sh
# Removes the agent; --purge also removes /etc/xunjian/agent.toml, the state dir and the user.
set -eu
[ "$(id -u)" = 0 ] || { echo "uninstall.sh: run as root" >&2; exit 1; }
if [ -d /run/systemd/system ]; then
  systemctl disable --now xunjian-agent 2>/dev/null || true
fi
rm -f /etc/systemd/system/xunjian-agent.service
[ -d /run/systemd/system ] && systemctl daemon-reload || true
rm -rf /opt/xunjian-agent
if [ "${1:-}" = "--purge" ]; then
  rm -f /etc/xunjian/agent.toml
  rmdir /etc/xunjian 2>/dev/null || true
  rm -rf /var/lib/xunjian
  userdel xunjian 2>/dev/null || true
  echo "xunjian-agent removed with its config, state and user"
else
  echo "xunjian-agent removed; kept /etc/xunjian and /var/lib/xunjian (--purge removes them)"
fi
"""


def agent_requirements() -> List[str]:
    """The runtime dependencies of the agent: [project].dependencies, never the collector extra."""
    deps = read_toml(ROOT / "pyproject.toml")["project"]["dependencies"]
    return [str(d) for d in deps]


def platform_tag(python_version: Optional[str], platform: Optional[str]) -> str:
    py = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"{platform or sysconfig.get_platform()}-cp{py.replace('.', '')}".replace("_", "-")


def wheelhouse(target: Path, python_version: Optional[str], platform: Optional[str]) -> None:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--quiet", "--no-deps", "-w", str(target), str(ROOT)], check=True
    )
    if python_version is None and platform is None:
        subprocess.run(
            [*pip, "wheel", "--quiet", "-w", str(target), *agent_requirements()], check=True
        )
        return
    cross = ["--only-binary=:all:", "--implementation", "cp"]
    if python_version:
        cross += ["--python-version", python_version]
    if platform:
        cross += ["--platform", platform]
    subprocess.run(
        [*pip, "download", "--quiet", *cross, "-d", str(target), *agent_requirements()], check=True
    )


def build(out: Path, python_version: Optional[str] = None, platform: Optional[str] = None) -> Path:
    name = f"xunjian-agent-{__version__}-{platform_tag(python_version, platform)}"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp) / name
        (top / "docs").mkdir(parents=True)
        wheelhouse(top / "wheelhouse", python_version, platform)
        shutil.copy(ROOT / "config" / "agent.example.toml", top / "agent.example.toml")
        shutil.copy(
            ROOT / "config" / "systemd" / "xunjian-agent.service", top / "xunjian-agent.service"
        )
        shutil.copy(ROOT / "docs" / "agent.md", top / "docs" / "agent.md")
        (top / "VERSION").write_text(__version__ + "\n")
        for script, text in (("install.sh", INSTALL_SH), ("uninstall.sh", UNINSTALL_SH)):
            (top / script).write_text(text)
            (top / script).chmod(0o755)
        tarball = out / f"{name}.tar.gz"
        with tarfile.open(tarball, "w:gz") as tar:
            tar.add(str(top), arcname=name)
    return tarball


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent.bundle", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--python-version", help="target interpreter, e.g. 3.9 (default: this one)")
    parser.add_argument("--platform", help="target wheel platform, e.g. manylinux2014_x86_64")
    args = parser.parse_args(argv)
    print(build(args.out, args.python_version, args.platform))
    return 0


if __name__ == "__main__":
    sys.exit(main())
