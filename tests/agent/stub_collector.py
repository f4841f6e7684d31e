"""A real HTTP server on loopback with the collector's four agent endpoints, for agent tests and
bench/agent_rss_bench.py (the agent side must not depend on the collector's FastAPI stack).

It validates every body with the checks.wire / checks.model shapes the real collector uses, stores
by idempotency key (run_id, batch_id, gap_id) as the real one does, and counts every POST, so a
test can tell "stored once" from "received once". `mode` makes it misbehave: "down" (the port
refuses connections), "503", "429" (with Retry-After), "400", "ack-lost" (stores, then answers
503, as when a reply is lost on the way back).
"""

from __future__ import annotations

import gzip
import json
import secrets
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Set

from checks.model import InspectionRun
from checks.wire import EnrollRequest, EnrollResponse, Heartbeat, RunReceipt, SampleBatch


class StubCollector:
    def __init__(self, port: int = 0, validate_runs: bool = True) -> None:
        self.lock = threading.Lock()
        self.tokens: Set[str] = set()
        self.credentials: Dict[str, str] = {}
        self.runs: Dict[str, Dict[str, Any]] = {}
        self.batches: Dict[str, Dict[str, Any]] = {}
        self.gaps: Dict[str, Dict[str, Any]] = {}
        self.heartbeats: List[Dict[str, Any]] = []
        self.posts: Dict[str, int] = {"enroll": 0, "runs": 0, "samples": 0, "heartbeat": 0}
        self.seen_headers: List[Dict[str, str]] = []
        self.raw_bodies: List[bytes] = []
        self.reply: Dict[str, Any] = {}
        self.mode = "up"
        self.retry_after = "1"
        self.validate_runs = validate_runs
        self._port = port
        self._server: Optional[ThreadingHTTPServer] = None
        self.start()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                stub._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        self.mode = "up"

    def stop(self) -> None:
        """Close the port: clients get connection refused, as when the collector is down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.mode = "down"

    def set_mode(self, mode: str) -> None:
        if mode == "down":
            self.stop()
            return
        if self._server is None:
            self.start()
        self.mode = mode

    def issue_token(self) -> str:
        token = "enroll-" + secrets.token_hex(12)
        self.tokens.add(token)
        return token

    # -- request handling ---------------------------------------------------------------------

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        if self.mode == "ack-lost" and status < 300:
            status, body = 503, {"detail": "stored, but the answer is lost"}
        data = json.dumps(body, default=str).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        raw = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        body = gzip.decompress(raw) if h.headers.get("Content-Encoding") == "gzip" else raw
        endpoint = h.path.rsplit("/", 1)[-1]
        with self.lock:
            self.seen_headers.append(dict(h.headers))
            self.raw_bodies.append(body)
            if endpoint in self.posts:
                self.posts[endpoint] += 1
        if self.mode == "503":
            return self._send(h, 503, {"detail": "maintenance"})
        if self.mode == "429":
            return self._send(h, 429, {"detail": "slow down"}, {"Retry-After": self.retry_after})
        if self.mode == "400":
            return self._send(h, 400, {"detail": "bad request"})
        if endpoint == "enroll":
            return self._enroll(h, body)
        host = self.credentials.get(h.headers.get("Authorization", "").replace("Bearer ", "", 1))
        if host is None:
            return self._send(h, 401, {"detail": "bad credential"})
        try:
            if endpoint == "runs":
                self._runs(h, host, body)
            elif endpoint == "samples":
                batch = SampleBatch.model_validate_json(body)
                with self.lock:
                    self.batches.setdefault(str(batch.batch_id), json.loads(body))
                self._send(h, 200, {"batch_id": str(batch.batch_id), "stored": len(batch.samples)})
            elif endpoint == "heartbeat":
                beat = Heartbeat.model_validate_json(body)
                with self.lock:
                    self.heartbeats.append(json.loads(body))
                    for gap in beat.gaps:
                        self.gaps.setdefault(str(gap.gap_id), gap.model_dump(mode="json"))
                self._send(h, 200, self.reply)
            else:
                self._send(h, 404, {"detail": "no such endpoint"})
        except ValueError as exc:
            self._send(h, 422, {"detail": str(exc)[:200]})

    def _enroll(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        req = EnrollRequest.model_validate_json(body)
        with self.lock:
            if req.token not in self.tokens:
                # echoes the token, as a careless server might: the agent must not repeat it
                return self._send(h, 401, {"detail": f"unknown or used token {req.token}"})
            self.tokens.discard(req.token)
            host_id = "h-" + uuid.uuid4().hex[:8]
            credential = secrets.token_urlsafe(24)
            self.credentials[credential] = host_id
        self._send(
            h,
            201,
            EnrollResponse(host_id=host_id, credential=credential, contract="WB-TEST").model_dump(
                mode="json"
            ),
        )

    def _runs(self, h: BaseHTTPRequestHandler, host: str, body: bytes) -> None:
        if self.validate_runs:
            run_id = str(InspectionRun.model_validate_json(body).run_id)
        else:
            run_id = str(json.loads(body)["run_id"])
        with self.lock:
            duplicate = run_id in self.runs
            if not duplicate:
                self.runs[run_id] = {"host": host, "bytes": len(body)}
        receipt = RunReceipt(
            run_id=uuid.UUID(run_id),
            host_id=host,
            received_at=datetime.now(timezone.utc),
            duplicate=duplicate,
        )
        self._send(h, 200 if duplicate else 201, receipt.model_dump(mode="json"))

    def sample_times(self) -> List[str]:
        with self.lock:
            return [s["at"] for b in self.batches.values() for s in b["samples"]]
