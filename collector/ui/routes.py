"""The console's pages and form actions, mounted on the collector's app by `mount_console`.

Pages are plain server-rendered HTML (Jinja2, no script). Every form posts a CSRF token that is
checked before anything else happens; actions reuse the API's own code (acknowledging a finding,
requesting an inspection) and the reports' builder, so the console never does a thing
differently from the API. Links in alerts point here: /findings/ID and /hosts/ID.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path as FsPath
from typing import Annotated, Any, Optional
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from agent.config import ConfigError
from checks.text import CHECKS_LOCALE, LANGS, Texts
from collector import periods
from collector.api.findings import acknowledge
from collector.api.hosts import request_inspection
from collector.api.schemas import AckRequest
from collector.contracts import Contract
from collector.db.engine import Database
from collector.db.types import utcnow
from collector.settings import CollectorSettings
from collector.ui import auth, views
from collector.ui.auth import ActiveSession, ConsoleUser
from collector.ui.config import UiSettings, is_loopback
from collector.ui.views import Fmt, PageError

UI_DIR = FsPath(__file__).resolve().parent
UI_LOCALE = UI_DIR / "locale"
SESSION_COOKIE = "xj_session"
LOGIN_COOKIE = "xj_login"
LANG_COOKIE = "xj_lang"
LANG_COOKIE_DAYS = 365
NOTE_LIMIT = 2000
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
REPORT_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""The stored report HTML is standalone (inline CSS, charts as data: URIs) and gets no script."""


@lru_cache(maxsize=None)
def ui_texts(lang: str) -> Texts:
    return Texts(lang, [CHECKS_LOCALE, UI_LOCALE])


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(UI_DIR / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass
class Console:
    db: Database
    settings: CollectorSettings
    secret: bytes

    @property
    def ui(self) -> UiSettings:
        return self.settings.ui


class LoginRequired(Exception):
    """No valid session: the handler sends the browser to the log-in page and back."""


def accept_language(header: str) -> Optional[str]:
    """The first of zh_CN / en the browser asks for, by q-value; None when it wants neither."""
    ranked: list[tuple[float, int, str]] = []
    for pos, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, pos, tag.strip().lower()))
    for neg_q, _, tag in sorted(ranked):
        if neg_q < 0 and tag.startswith("zh"):
            return "zh_CN"
        if neg_q < 0 and tag.startswith("en"):
            return "en"
    return None


def safe_next(value: Optional[str], default: str = "/contracts") -> str:
    """A local path to return to; anything else (another site, a scheme) → `default`."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return default
    return value


class Page:
    """One request's console context: session, language, formatters and the template renderer."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.console: Console = request.app.state.console
        self.now: datetime = utcnow()
        self.session: Optional[ActiveSession] = auth.find_session(
            self.console.db, request.cookies.get(SESSION_COOKIE), self.now
        )
        self.lang = self._language()
        self.t = ui_texts(self.lang)
        self.fmt = Fmt(self.t, self.now)
        self._nonce: Optional[str] = None

    def _language(self) -> str:
        if self.session is not None and self.session.user.lang in LANGS:
            return str(self.session.user.lang)
        cookie = self.request.cookies.get(LANG_COOKIE)
        if cookie in LANGS:
            return str(cookie)
        return accept_language(self.request.headers.get("accept-language", "")) or "zh_CN"

    @property
    def user(self) -> ConsoleUser:
        if self.session is None:
            raise LoginRequired()
        return self.session.user

    @property
    def client(self) -> str:
        return self.request.client.host if self.request.client else "unknown"

    # ------------------------------------------------------------------------------- CSRF

    def csrf(self) -> str:
        """The token this page's forms carry."""
        if self.session is not None:
            return self.session.csrf
        nonce = self.request.cookies.get(LOGIN_COOKIE)
        if not nonce or len(nonce) > 100:
            nonce = self._nonce = self._nonce or secrets.token_urlsafe(24)
        return auth.login_csrf(self.console.secret, nonce)

    def require_csrf(self, given: str) -> None:
        if self.session is not None:
            expected: Optional[str] = self.session.csrf
        else:
            nonce = self.request.cookies.get(LOGIN_COOKIE)
            expected = auth.login_csrf(self.console.secret, nonce) if nonce else None
        if not auth.tokens_equal(expected, given):
            raise PageError(403, "ui.error.csrf")

    def require_actor(self) -> ConsoleUser:
        user = self.user
        if not user.can_act:
            raise PageError(403, "ui.error.read_only")
        return user

    # ---------------------------------------------------------------------------- output

    def cookie(self, response: Response, name: str, value: str, max_age: Optional[int]) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            secure=self.console.ui.cookie_secure,
            samesite="lax",
        )

    def render(self, template: str, code: int = 200, **context: Any) -> Response:
        html = (
            _templates()
            .get_template(template)
            .render(
                t=self.t,
                lang=self.lang,
                html_lang="zh-CN" if self.lang == "zh_CN" else "en",
                user=self.session.user if self.session else None,
                csrf=self.csrf(),
                here=self._here(),
                langs=LANGS,
                **context,
            )
        )
        response = HTMLResponse(html, status_code=code)
        return self.finish(response)

    def redirect(self, url: str) -> Response:
        return self.finish(RedirectResponse(url, status_code=303))

    def finish(self, response: Response) -> Response:
        if self._nonce is not None:
            self.cookie(response, LOGIN_COOKIE, self._nonce, None)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    def _here(self) -> str:
        url = self.request.url
        return url.path + (f"?{url.query}" if url.query else "")


PageDep = Annotated[Page, Depends(Page)]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
"""Database ids: a number past BIGINT would otherwise reach PostgreSQL."""
Csrf = Annotated[str, Form()]

router = APIRouter(include_in_schema=False)


# --------------------------------------------------------------------------- log-in and out


@router.get("/", response_class=HTMLResponse)
def home(page: PageDep) -> Response:
    return page.redirect("/contracts" if page.session else "/login")


@router.get("/login", response_class=HTMLResponse)
def login_form(page: PageDep, next: Optional[str] = None) -> Response:
    return page.render("login.html", next=safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login(
    page: PageDep,
    csrf: Csrf = "",
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    page.require_csrf(csrf)
    console = page.console
    result = auth.log_in(console.db, name, password, page.client, console.ui, page.now)
    if result.user is None:
        if result.locked_until is not None:
            minutes = max(1, -(-int((result.locked_until - page.now).total_seconds()) // 60))
            error = page.t("ui.login.locked", {"minutes": minutes})
            return page.render("login.html", 429, next=safe_next(next), error=error, name=name)
        error = page.t("ui.login.failed")
        return page.render("login.html", 401, next=safe_next(next), error=error, name=name)
    if page.session is not None:  # a fresh token at every log-in (no session fixation)
        auth.close_session(console.db, page.session.token_sha256)
    token = auth.open_session(console.db, result.user, page.client, console.ui, page.now)
    response = page.redirect(safe_next(next))
    page.cookie(response, SESSION_COOKIE, token, int(console.ui.session_hours * 3600))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(page: PageDep, csrf: Csrf = "") -> Response:
    page.require_csrf(csrf)
    if page.session is not None:
        auth.close_session(page.console.db, page.session.token_sha256)
    response = page.redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/lang")
def switch_language(
    page: PageDep,
    csrf: Csrf = "",
    lang: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    page.require_csrf(csrf)
    chosen = lang if lang in LANGS else "zh_CN"
    if page.session is not None:
        auth.set_language(page.console.db, page.session.user.id, chosen)
    response = page.redirect(safe_next(next, "/"))
    page.cookie(response, LANG_COOKIE, chosen, LANG_COOKIE_DAYS * 86400)
    return response


# ---------------------------------------------------------------------------------- pages


@router.get("/contracts", response_class=HTMLResponse)
def contracts(page: PageDep) -> Response:
    user = page.user
    with page.console.db.read() as session:
        cards = views.contract_cards(session, page.fmt, user, page.console.settings.silence_minutes)
    return page.render("contracts.html", cards=cards)


@router.get("/contracts/{number:path}", response_class=HTMLResponse)
def contract(number: str, page: PageDep) -> Response:
    user = page.user
    with page.console.db.read() as session:
        c = views.contract_in_scope(session, user, number)
        card, hosts, _ = views.contract_card(
            session, page.fmt, c, page.console.settings.silence_minutes
        )
        findings = views.open_findings(session, page.fmt, c)
        reports = views.report_lines(session, page.fmt, [c])
    support = (
        page.t("ui.support.7x24")
        if c.support.kind == "7x24"
        else page.t(
            "ui.support.5x8",
            {"start": c.support.start.strftime("%H:%M"), "end": c.support.end.strftime("%H:%M")},
        )
    )
    return page.render(
        "contract.html",
        c=c,
        card=card,
        hosts=hosts,
        findings=findings,
        reports=reports,
        support=support,
        periods=views.report_periods(c, page.now),
    )


@router.get("/hosts/{host_id}", response_class=HTMLResponse)
def host(host_id: str, page: PageDep) -> Response:
    user = page.user
    with page.console.db.read() as session:
        data = views.host_page(
            session, page.fmt, user, host_id, page.console.settings.silence_minutes
        )
    return page.render("host.html", p=data)


@router.post("/hosts/{host_id}/inspect")
def inspect_now(host_id: str, page: PageDep, csrf: Csrf = "") -> Response:
    page.require_csrf(csrf)
    user = page.require_actor()
    with page.console.db.read() as session:
        views.host_in_scope(session, user, host_id)
    try:
        request_inspection(host_id, page.console.db, user.principal())
    except HTTPException as exc:
        raise PageError(409, "ui.error.no_agent") from exc
    return page.redirect(f"/hosts/{quote(host_id)}?done=inspect")


@router.get("/findings", response_class=HTMLResponse)
def findings_queue(page: PageDep) -> Response:
    user = page.user
    with page.console.db.read() as session:
        lines = views.queue(session, page.fmt, user)
    return page.render("queue.html", findings=lines)


@router.get("/findings/{finding_id}")
def finding(finding_id: RowId, page: PageDep) -> Response:
    """Alerts link here; the finding is shown on its host's page."""
    with page.console.db.read() as session:
        row = views.finding_in_scope(session, page.user, finding_id)
    return page.redirect(f"/hosts/{quote(row.host_id)}#finding-{row.id}")


@router.post("/findings/{finding_id}/ack")
def acknowledge_finding(
    finding_id: RowId,
    page: PageDep,
    csrf: Csrf = "",
    note: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    page.require_csrf(csrf)
    user = page.require_actor()
    with page.console.db.read() as session:
        views.finding_in_scope(session, user, finding_id)
    acknowledge(
        finding_id, AckRequest(note=note.strip()[:NOTE_LIMIT]), page.console.db, user.principal()
    )
    return page.redirect(safe_next(next, "/findings"))


@router.get("/reports", response_class=HTMLResponse)
def reports(page: PageDep, contract: Optional[str] = None) -> Response:
    user = page.user
    with page.console.db.read() as session:
        if contract:
            chosen = [views.contract_in_scope(session, user, contract)]
        else:
            chosen = views.visible_contracts(session, user)
        lines = views.report_lines(session, page.fmt, chosen)
        numbers = [c.number for c in views.visible_contracts(session, user)]
    return page.render("reports.html", reports=lines, contract=contract, numbers=numbers)


@router.get("/reports/{report_id}", response_class=HTMLResponse)
def report(report_id: RowId, page: PageDep) -> Response:
    user = page.user
    with page.console.db.read() as session:
        row = views.report_in_scope(session, user, report_id)
        c = views.contract_in_scope(session, user, row.contract)
        line = next(x for x in views.report_lines(session, page.fmt, [c]) if x.id == row.id)
    return page.render("report.html", r=line, c=c)


@router.get("/reports/{report_id}/html", response_class=HTMLResponse)
def report_view(report_id: RowId, page: PageDep) -> Response:
    with page.console.db.read() as session:
        row = views.report_in_scope(session, page.user, report_id)
        html = views.report_html(row)
    response = HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP})
    return page.finish(response)


@router.get("/reports/{report_id}/pdf")
def report_pdf(report_id: RowId, page: PageDep) -> Response:
    with page.console.db.read() as session:
        row = views.report_in_scope(session, page.user, report_id)
        if row.pdf is None:
            raise PageError(404, "ui.error.no_report_file")
        pdf, number, period = row.pdf, row.contract, row.period_key
    name = f"{number}-{period}.pdf".replace("/", "_")
    ascii_name = "".join(
        ch if ch.isascii() and ch.isprintable() and ch != '"' else "_" for ch in name
    )
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    response = Response(pdf, media_type="application/pdf")
    response.headers["Content-Disposition"] = disposition
    return page.finish(response)


@router.post("/report-now")
def report_now(
    page: PageDep,
    csrf: Csrf = "",
    contract: Annotated[str, Form()] = "",
    period: Annotated[str, Form()] = "",
) -> Response:
    page.require_csrf(csrf)
    user = page.require_actor()
    with page.console.db.read() as session:
        c = views.contract_in_scope(session, user, contract)
    report_id = build_and_send(page.console, c, period, user)
    return page.redirect(f"/reports/{report_id}")


def build_and_send(console: Console, contract: Contract, key: str, user: ConsoleUser) -> int:
    """The reports' own build-and-queue path (`xunjian report build --send`): a report already
    built for the period is rebuilt as a new version, whose mail is queued afresh."""
    from collector.reports import store  # WeasyPrint and matplotlib only when asked

    try:
        period = periods.parse(key, contract)
    except periods.PeriodError as exc:
        raise PageError(422, "ui.error.report_failed", {"reason": str(exc)}) from exc
    worker = f"console:{user.name}@{socket.gethostname()}:{os.getpid()}"
    try:
        outcome = store.build(
            console.db, console.settings, contract, period, worker=worker, rebuild=True
        )
    except Exception as exc:  # the builder logged it and marked the report failed
        raise PageError(500, "ui.error.report_failed", {"reason": type(exc).__name__}) from exc
    if outcome is None:
        raise PageError(409, "ui.error.report_busy")
    return outcome.report_id


# ------------------------------------------------------------------------------- mounting


def _page_error(request: Request, exc: PageError) -> Response:
    page = Page(request)
    message = page.t(exc.key, exc.params)
    return page.render("error.html", exc.status, message=message, status=exc.status)


def _login_required(request: Request, _: LoginRequired) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    page = Page(request)
    return page.redirect("/login?" + urlencode({"next": safe_next(target)}))


def mount_console(app: FastAPI, settings: CollectorSettings) -> None:
    """Add the console to the collector's app; refuses insecure cookies off loopback."""
    ui = settings.ui
    if not ui.cookie_secure and (settings.tls_cert is not None or not is_loopback(settings.host)):
        raise ConfigError(
            "ui.cookie_secure = false is only allowed for a plain-http collector listening on "
            f"loopback (listen is {settings.listen}); browsers must get Secure cookies otherwise"
        )
    key_file = ui.secret_key_file or settings.home / "console.key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        secret = auth.load_secret(key_file)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"console key {key_file}: {exc}") from exc
    app.state.console = Console(app.state.db, settings, secret)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=UI_DIR / "static"), name="console-static")
    app.add_exception_handler(PageError, _page_error)  # type: ignore[arg-type]
    app.add_exception_handler(LoginRequired, _login_required)  # type: ignore[arg-type]
