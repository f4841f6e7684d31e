"""Redaction: seeded secrets never survive, ordinary log content does."""

from __future__ import annotations

import json
import string
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import RedactionConfig
from agent.redact import MASK, RedactionError, Redactor, id_card_valid
from checks.facts import FactSet, HostIdentity, HttpProbe, LogFacts, LogTemplate, ServiceEvent
from checks.model import Category, CheckResult, InspectionRun, Message, Severity, Source, Window

REDACTOR = Redactor()

TABLE = [
    ("login password=hunter2 user=bob", "login password=*** user=bob"),
    ("DB_PASSWORD = 'tr0ub4dor&3' next", "DB_PASSWORD = '***' next"),
    ('{"password": "p\\"w", "user": "bob"}', '{"password": "***", "user": "bob"}'),
    ("client_secret: abc123 ok", "client_secret: *** ok"),
    ("api-key=XYZ&page=2", "api-key=***&page=2"),
    ("Failed password for invalid user admin from 10.0.0.1 port 22 ssh2", None),
    (
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh rhost=1.2.3.4",
        None,
    ),
    (
        "GET https://bob:s3cr3t@example.com/x?access_token=abcdef&x=1 HTTP/1.1",
        "GET https://bob:***@example.com/x?access_token=***&x=1 HTTP/1.1",
    ),
    ("jdbc:mysql://app:p@ss@db:3306/app", "jdbc:mysql://app:***@db:3306/app"),
    ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer ***"),
    ('headers={"authorization": "Basic dXNlcjpwYXNz"}', 'headers={"authorization": "Basic ***"}'),
    ("curl -H 'X' bearer ZXlKaGJHY2lPaUpJVXpJMU5pSjk", "curl -H 'X' bearer ***"),
    (
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcDEF123 used",
        "token *** used",
    ),
    ("mysql --password hunter2 -u root", "mysql --password *** -u root"),
    ("CREATE USER 'x'@'%' IDENTIFIED BY 'pw123';", "CREATE USER 'x'@'%' IDENTIFIED BY '***';"),
    ("key AKIAIOSFODNN7EXAMPLE used", "key AKIA*** used"),
    ("aliyun LTAI5tQ7xYz9AbCdEfGhIjKl ok", "aliyun LTAI*** ok"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n"
        "-----END RSA PRIVATE KEY----- tail",
        "-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY----- tail",
    ),
    ("-----BEGIN CERTIFICATE-----", None),
    ("MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yW", MASK),
    (
        "id 11010519491231002X, order 110105194912310021",
        "id **************002X, order 110105194912310021",
    ),
    ("身份证号11010519491231002X。", "身份证号**************002X。"),
    ("call 13812345678 or +86 139-1234-5678", "call 138****5678 or +86 139****5678"),
    ("手机13812345678，", "手机138****5678，"),
    ("pid 213812345678 and id x13812345678", None),
    ("mail zhang.san@example.com.cn now", "mail z***@example.com.cn now"),
    ("root@db01 login", None),
    (
        "2026-11-21T06:03:41Z 192.168.1.10:8080 sha256 "
        + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        None,
    ),
    ("/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so", None),
    ("com/example/service/impl/UserServiceImpl2/Handler", None),
]


@pytest.mark.parametrize(("text", "expected"), TABLE)
def test_table(text: str, expected: object) -> None:
    assert REDACTOR.redact(text) == (text if expected is None else expected)


def test_id_card_checksum() -> None:
    assert id_card_valid("11010519491231002X")
    assert id_card_valid("11010519491231002x")
    assert not id_card_valid("110105194912310021")  # wrong check digit
    assert not id_card_valid("110105194913310029")  # month 13
    assert not id_card_valid("1101051949123100")


def test_configured_keywords_and_patterns() -> None:
    r = Redactor(
        RedactionConfig(keywords=["ACME Bank", "Project Phoenix"], patterns=[r"CUST-\d{6}"])
    )
    assert r.redact("acme bank order CUST-123456 for project phoenix") == "*** order *** for ***"


def test_disabled_keeps_only_configured_rules() -> None:
    r = Redactor(RedactionConfig(enabled=False, keywords=["acme"]))
    assert r.redact("password=x acme 13812345678") == "password=x *** 13812345678"


def test_bad_pattern_is_a_clear_error() -> None:
    with pytest.raises(RedactionError, match=r"redaction\.patterns\[2\] '\(unclosed'"):
        Redactor(RedactionConfig(patterns=["ok", "(unclosed"]))


def test_private_key_spread_over_lines() -> None:
    lines = [
        "dump: -----BEGIN OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
        "AAAAC3NzaC1lZDI1NTE5AAAAIObXcY",
        "-----END OPENSSH PRIVATE KEY----- done",
        "next line password=x",
    ]
    assert REDACTOR.redact_lines(lines) == [
        "dump: -----BEGIN OPENSSH PRIVATE KEY-----***",
        MASK,
        MASK,
        "***-----END OPENSSH PRIVATE KEY----- done",
        "next line password=***",
    ]


def test_redact_run_covers_every_free_text_field() -> None:
    secret = "hunter2secret"
    now = datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
    template = LogTemplate(
        rule="app.error",
        family="app",
        severity="warning",
        template_id="t1",
        template=f"login failed password={secret}",
        source="/var/log/app.log",
        count=1,
        samples=[f"10:00 password={secret}", "call 13812345678"],
    )
    facts = FactSet(
        collected_at=now,
        logs=LogFacts(templates=[template]),
        service_events=[ServiceEvent(unit="a.service", kind="failed", sample=f"token={secret}")],
        http=[HttpProbe(url=f"https://u:{secret}@x.example/", error=f"auth={secret}")],
        errors={"history": f"cannot read, secret={secret}"},
    )
    result = CheckResult(
        check="logs.alarms",
        category=Category.alarm_logs,
        severity=Severity.warning,
        value=f"password={secret}",
        message=Message(key="logs.alarms.bad", params={"sample": f"password={secret}", "count": 3}),
        summary=f"password={secret}",
        evidence=[f"password={secret}"],
        recommendation=f"rotate token={secret}",
    )
    run = InspectionRun(
        source=Source.agent,
        host=HostIdentity(hostname="web01"),
        window=Window(start=now - timedelta(hours=24), end=now),
        facts=facts,
        results=[result],
    )
    assert secret in run.to_json()
    redacted = REDACTOR.redact_run(run)
    text = redacted.to_json()
    assert secret not in text and "13812345678" not in text
    assert redacted.run_id == run.run_id
    assert redacted.results[0].message.params["count"] == 3
    assert (
        redacted.facts.logs is not None
        and redacted.facts.logs.templates[0].samples[1] == "call 138****5678"
    )


# ---- properties -------------------------------------------------------------------------------

PASSWORD_CHARS = string.ascii_letters + string.digits + "!#$%*+-./:=?@^_~,;"
passwords = st.text(PASSWORD_CHARS, min_size=8, max_size=40).filter(lambda p: not p.startswith("-"))
noise = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@st.composite
def id_cards(draw: st.DrawFn) -> str:
    region = draw(st.integers(110000, 829999))
    born = draw(st.dates(date(1930, 1, 1), date(2020, 12, 31)))
    seq = draw(st.integers(0, 999))
    body = f"{region}{born:%Y%m%d}{seq:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


phones = st.builds(
    lambda second, rest: f"1{second}{rest}",
    st.sampled_from("3456789"),
    st.text("0123456789", min_size=9, max_size=9),
)
emails = st.builds(
    "{}@{}.{}".format,
    st.text(string.ascii_lowercase + string.digits + "._%+-", min_size=2, max_size=20),
    st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=15),
    st.sampled_from(["com", "cn", "com.cn", "org"]),
)
BASE64 = string.ascii_letters + string.digits + "+/"


@st.composite
def pem_keys(draw: st.DrawFn) -> List[str]:
    label = draw(
        st.sampled_from(["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    )
    body = draw(st.lists(st.text(BASE64, min_size=64, max_size=64), min_size=2, max_size=8))
    return [f"-----BEGIN {label}-----", *body, f"-----END {label}-----"]


def assert_hidden(secret: str, prefix: str, suffix: str, output: str) -> None:
    """The secret may only appear as often as the random surroundings already contain it."""
    assert output.count(secret) <= prefix.count(secret) + suffix.count(secret), output


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    prefix=noise,
    suffix=noise,
    password=passwords,
    form=st.sampled_from(
        [
            "password={}",
            "db.passwd: {}",
            "PGPASSWORD={}",
            "https://admin:{}@db.example:5432/x",
            "GET /api?access_token={}&page=1",
            "Authorization: Bearer {}",
            "secret_key => {}",
            "--password {}",
            "private_key='{}'",
        ]
    ),
)
def test_seeded_passwords_never_survive(prefix: str, suffix: str, password: str, form: str) -> None:
    if "://" in form:
        password = password.replace("/", "x")  # a slash ends a URL's authority
    output = REDACTOR.redact(f"{prefix} {form.format(password)} {suffix}")
    # the form's own words are surroundings too: a password "Authoriz" is in "Authorization"
    assert_hidden(password, f"{prefix} {form.format('')}", suffix, output)


@SETTINGS
@given(
    prefix=noise,
    suffix=noise,
    value=st.text(min_size=8, max_size=40),
    key=st.sampled_from(["password", "token", "apiKey", "client_secret"]),
)
def test_seeded_json_secrets_never_survive(prefix: str, suffix: str, value: str, key: str) -> None:
    line = json.dumps({"user": "bob", key: value}, ensure_ascii=False)
    output = REDACTOR.redact(f"{prefix} {line} {suffix}")
    assert_hidden(json.dumps(value, ensure_ascii=False)[1:-1], prefix, suffix, output)


@SETTINGS
@given(
    prefix=noise,
    suffix=noise,
    number=id_cards(),
    phone=phones,
    email=emails,
    glue=st.sampled_from(["{} ", "身份证{}，", "({})", "tel:{} ", "+86 {}\t", "<{}>"]),
)
def test_seeded_personal_data_never_survives(
    prefix: str, suffix: str, number: str, phone: str, email: str, glue: str
) -> None:
    assert id_card_valid(number)
    middle = " ".join(glue.format(x) for x in (number, phone, email))
    output = REDACTOR.redact(f"{prefix} {middle} {suffix}")
    for secret in (number, phone, email):
        assert_hidden(secret, prefix, suffix, output)


@SETTINGS
@given(prefix=noise, suffix=noise, key=pem_keys())
def test_seeded_private_keys_never_survive(prefix: str, suffix: str, key: List[str]) -> None:
    joined = REDACTOR.redact(prefix + " " + "\n".join(key) + " " + suffix)
    by_line = REDACTOR.redact_lines([prefix, *key, suffix])
    for body_line in key[1:-1]:
        assert_hidden(body_line, prefix, suffix, joined)
        assert_hidden(body_line, prefix, suffix, "\n".join(by_line))


@SETTINGS
@given(
    aws=st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16),
    prefix=noise,
    suffix=noise,
)
def test_seeded_cloud_keys_never_survive(aws: str, prefix: str, suffix: str) -> None:
    key = f"AKIA{aws}"
    assert_hidden(key, prefix, suffix, REDACTOR.redact(f"{prefix} {key} {suffix}"))


@st.composite
def bad_checksum_orders(draw: st.DrawFn) -> str:
    number = draw(id_cards())
    wrong = draw(st.sampled_from([c for c in "0123456789" if c != number[-1]]))
    return number[:-1] + wrong


harmless = st.one_of(
    st.datetimes(datetime(2000, 1, 1), datetime(2035, 1, 1)).map(
        lambda d: d.isoformat(timespec="seconds")
    ),
    st.datetimes(datetime(2000, 1, 1), datetime(2035, 1, 1)).map(
        lambda d: d.strftime("%b %d %H:%M:%S")
    ),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.tuples(st.integers(0, 255), st.integers(1, 65535)).map(lambda t: f"10.0.0.{t[0]}:{t[1]}"),
    bad_checksum_orders(),
    st.integers(10**19, 10**20).map(str),
    st.text("0123456789", min_size=9, max_size=9).map(lambda s: f"12{s}"),
    st.uuids().map(str),
    st.binary(min_size=32, max_size=32).map(lambda b: b.hex()),
    st.sampled_from(
        ["nginx.service", "/var/log/syslog", "kernel: Out of memory: Killed process 1234 (java)"]
    ),
)


@SETTINGS
@given(parts=st.lists(harmless, min_size=1, max_size=8))
def test_ordinary_log_content_is_left_alone(parts: List[str]) -> None:
    text = " ".join(parts)
    assert REDACTOR.redact(text) == text


def test_uuid_and_hash_are_not_masked() -> None:
    text = f"run {uuid.uuid4()} ok"
    assert REDACTOR.redact(text) == text
