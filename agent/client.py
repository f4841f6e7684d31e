"""Talking to the collector: TLS policy, credentials, response classification, and the httpx client.

Two transports share one policy. Workers (enroll, deliveries) use httpx through `CollectorClient`;
the resident scheduler sends its 60-second heartbeat with `post_stdlib` (http.client), because
importing httpx would cost the resident process ~9 MB more, and a worker every minute would cost
~0.35 s of CPU a minute (0.6 % of a core), three times the agent's whole CPU budget. Both build
their TLS context with `tls_context` and read responses with `classify`, so they cannot drift
apart. httpx is therefore imported inside `CollectorClient`, not at module level.

The enroll token is used once and never logged: error texts pass through `_scrub` before they are
raised, in case a collector echoes the request back.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import json
import logging
import os
import ssl
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

from agent import __version__
from agent.spool import Outcome

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from agent.settings import AgentSettings
    from checks.wire import EnrollResponse

log = logging.getLogger("xunjian.client")

API = "/api/v1"
ENDPOINTS = {"runs": API + "/runs", "samples": API + "/samples", "heartbeat": API + "/heartbeat"}
ENROLLMENT_FILE = "enrollment.json"


class CollectorError(RuntimeError):
    """A collector call that did not succeed; the message is safe to log (no secrets)."""


@dataclass
class Enrollment:
    collector_url: str
    host_id: str
    credential: str
    contract: str = ""


def load_enrollment(state_dir: Path) -> Optional[Enrollment]:
    path = Path(state_dir) / ENROLLMENT_FILE
    try:
        data = json.loads(path.read_text("utf-8"))
        return Enrollment(
            **{k: str(data[k]) for k in ("collector_url", "host_id", "credential", "contract")}
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CollectorError(
            f"{path}: unreadable enrollment ({type(exc).__name__}); enroll again"
        ) from exc


def save_enrollment(state_dir: Path, enrollment: Enrollment) -> Path:
    """Atomically, with mode 0600 from the first byte (the credential never sits world-readable)."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / ENROLLMENT_FILE
    tmp = state_dir / (".enrollment.json.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(enrollment), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def tls_context(ca_file: Optional[str]) -> ssl.SSLContext:
    """Verification always on; a pinned CA bundle replaces the system store when given."""
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def retry_after(value: Optional[str]) -> Optional[float]:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify(status: int, headers: Mapping[str, str], detail: str = "") -> Outcome:
    """The delivery policy: 2xx done; 5xx/408 retry; 429 retry after Retry-After; 401/403 stop
    (the credential is the problem, not the record, so nothing is dead-lettered); other 4xx
    dead-letter."""
    if 200 <= status < 300:
        return Outcome("ok")
    error = f"HTTP {status}" + (f": {detail[:200]}" if detail else "")
    if status == 429:
        return Outcome(
            "retry", error, retry_after(headers.get("retry-after") or headers.get("Retry-After"))
        )
    if status in (401, 403):
        return Outcome("auth", error + " (credential rejected: enroll again)")
    if 400 <= status < 500 and status != 408:
        return Outcome("reject", error)
    return Outcome("retry", error)


def request_headers(credential: Optional[str]) -> Dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "User-Agent": f"xunjian-agent/{__version__}",
    }
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    return headers


def _detail(body: bytes) -> str:
    """The collector's short error text (FastAPI's `detail`), never a whole page."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and "detail" in data:
            return str(data["detail"])[:200]
    except ValueError:
        pass
    return body[:120].decode("utf-8", "replace")


def _scrub(text: str, secret: Optional[str]) -> str:
    return text.replace(secret, "***") if secret else text


def post_stdlib(
    url: str,
    path: str,
    payload: bytes,
    credential: Optional[str],
    ca_file: Optional[str] = None,
    timeout: float = 10.0,
) -> Tuple[int, Dict[str, str], bytes]:
    """One gzip'd JSON POST with http.client, for the resident heartbeat (see module docstring)."""
    parts = urllib.parse.urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=tls_context(ca_file)
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            parts.path.rstrip("/") + path,
            body=gzip.compress(payload),
            headers=request_headers(credential),
        )
        resp = conn.getresponse()
        body = resp.read(64 * 1024)
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


class CollectorClient:
    """httpx client for workers: one connection pool per worker run, closed when it ends."""

    def __init__(
        self,
        url: str,
        credential: Optional[str],
        ca_file: Optional[str] = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
    ) -> None:
        import httpx  # see module docstring: the resident must not import httpx

        self.url = url.rstrip("/")
        self._credential = credential
        self._http: httpx.Client = httpx.Client(
            base_url=self.url,
            verify=tls_context(ca_file) if self.url.startswith("https://") else True,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            headers=request_headers(credential),
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: "AgentSettings") -> "CollectorClient":
        enrollment = load_enrollment(settings.state_dir)
        if enrollment is None:
            raise CollectorError(
                f"not enrolled (no {settings.state_dir / ENROLLMENT_FILE}): "
                "run xunjian-agent enroll"
            )
        url = settings.collector_url or enrollment.collector_url
        from agent.settings import check_transport

        check_transport(url, settings.allow_insecure)
        return cls(
            url,
            enrollment.credential,
            str(settings.ca_file) if settings.ca_file else None,
            settings.connect_timeout,
            settings.read_timeout,
        )

    def __enter__(self) -> "CollectorClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.close()

    def post(self, path: str, payload: bytes) -> "httpx.Response":
        return self._http.post(path, content=gzip.compress(payload))

    def deliver(self, kind: str, body: bytes) -> Outcome:
        """One spooled record to its endpoint, classified for the spool's retry policy."""
        import httpx

        try:
            resp = self.post(ENDPOINTS[kind], body)
        except httpx.TransportError as exc:  # refused, reset, timeouts, TLS failures
            return Outcome(
                "retry", f"{type(exc).__name__}: {_scrub(str(exc), self._credential)}"[:300]
            )
        return classify(
            resp.status_code, resp.headers, _scrub(_detail(resp.content), self._credential)
        )


def enroll(url: str, token: str, settings: "AgentSettings") -> "EnrollResponse":
    """Exchange a single-use enroll token for this host's credential; stores it 0600."""
    import httpx

    from agent.settings import check_transport
    from agent.sources.host import host_identity
    from checks.wire import EnrollRequest, EnrollResponse

    url = url.rstrip("/")
    check_transport(url, settings.allow_insecure)
    request = EnrollRequest(token=token, host=host_identity(), agent_version=__version__)
    client = CollectorClient(
        url,
        None,
        str(settings.ca_file) if settings.ca_file else None,
        settings.connect_timeout,
        settings.read_timeout,
    )
    with client:
        try:
            resp = client.post(API + "/enroll", request.model_dump_json().encode())
        except httpx.TransportError as exc:
            raise CollectorError(f"cannot reach {url}: {_scrub(str(exc), token)}") from None
    if not 200 <= resp.status_code < 300:
        raise CollectorError(
            f"enrollment refused by {url}: HTTP {resp.status_code}: "
            + _scrub(_detail(resp.content), token)
        )
    try:
        answer = EnrollResponse.model_validate_json(resp.content)
    except ValueError:
        raise CollectorError(f"{url} answered enrollment with an unexpected body") from None
    save_enrollment(
        settings.state_dir,
        Enrollment(
            collector_url=url,
            host_id=answer.host_id,
            credential=answer.credential,
            contract=answer.contract,
        ),
    )
    log.info("enrolled with %s as host %s (contract %s)", url, answer.host_id, answer.contract)
    return answer
