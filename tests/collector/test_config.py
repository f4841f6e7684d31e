"""Contracts import all-or-nothing; every file in config/ validates; settings from file and env;
the models and the migration history describe the same schema on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

import collector.db.all_models  # noqa: F401  (every table on Base.metadata)
from agent.config import ConfigError
from collector.contracts import load_contract
from collector.db.contract_store import get_contract, import_contracts
from collector.db.engine import Database
from collector.db.models import Base, ContractRow
from collector.settings import load_settings
from tests.collector.conftest import contract_toml
from tests.conftest import ROOT

pytestmark = pytest.mark.py311

CONTRACTS = sorted((ROOT / "config" / "contracts").glob("*.toml"))


def test_models_match_migrations(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


@pytest.mark.parametrize("path", CONTRACTS, ids=lambda p: p.name)
def test_config_contracts_validate(path: Path) -> None:
    contract = load_contract(path)
    assert contract.number


def test_collector_example_settings_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XUNJIAN_CONFIG", "XUNJIAN_HOME", "XUNJIAN_DATABASE_URL", "XUNJIAN_LISTEN"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(ROOT / "config" / "collector.example.toml")
    assert settings.listen == "127.0.0.1:8080"
    assert settings.max_body_bytes == 8 * 1024 * 1024
    assert settings.smtp.security == "starttls"


def test_settings_env_wins_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('listen = "0.0.0.0:9000"\n[smtp]\nhost = "mail.example"\nport = 25\n')
    monkeypatch.setenv("XUNJIAN_CONFIG", str(conf))
    monkeypatch.setenv("XUNJIAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XUNJIAN_SMTP_PORT", "465")
    monkeypatch.setenv("XUNJIAN_SMTP_SECURITY", "tls")
    monkeypatch.setenv("XUNJIAN_SMTP_PASSWORD_FILE", "/run/secrets/smtp")
    monkeypatch.setenv("XUNJIAN_SMTP_FROM", "xunjian@vendor.example")
    s = load_settings()
    assert (s.host, s.port) == ("0.0.0.0", 9000)
    assert s.db_url == f"sqlite:///{(tmp_path / 'home' / 'xunjian.db').resolve()}"
    assert (s.smtp.host, s.smtp.port, s.smtp.security) == ("mail.example", 465, "tls")
    assert (str(s.smtp.password_file), s.smtp.sender) == (
        "/run/secrets/smtp",
        "xunjian@vendor.example",
    )
    monkeypatch.setenv("XUNJIAN_LISTEN", "nonsense")
    with pytest.raises(ConfigError, match="listen"):
        load_settings()
    monkeypatch.setenv("XUNJIAN_LISTEN", "[::1]:8443")
    assert load_settings(database_url="postgresql+psycopg://x@h/db").host == "::1"
    with pytest.raises(ConfigError, match="psycopg"):
        load_settings(database_url="postgresql://x@h/db")


def test_contract_import_all_or_nothing(db: Database, tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(contract_toml("G-1"), encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(
        contract_toml("B-1", '[thresholds."cpu.usage"]\nwarning = "high"\n'), encoding="utf-8"
    )
    with pytest.raises(ConfigError) as err:
        import_contracts(db, [good, bad])
    message = str(err.value)
    assert str(bad) in message and "thresholds.cpu.usage.warning" in message
    with db.read() as s:
        assert s.scalars(select(ContractRow.number)).all() == []
    assert import_contracts(db, [good, *CONTRACTS])[0] == "G-1"
    with db.read() as s:
        stored = s.scalars(select(ContractRow.number)).all()
        assert sorted(stored) == sorted(["G-1", *(load_contract(p).number for p in CONTRACTS)])


def test_contract_errors_name_field_paths(db: Database, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(
        contract_toml("W-1", 'level = "gold"\n').replace('level = "regular"\n', ""),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"wrong\.toml(.|\n)*level"):
        import_contracts(db, [wrong])
    dup = tmp_path / "dup.toml"
    dup.write_text(contract_toml("G-1"), encoding="utf-8")
    good = tmp_path / "good.toml"
    good.write_text(contract_toml("G-1"), encoding="utf-8")
    with pytest.raises(ConfigError, match="also defined"):
        import_contracts(db, [good, dup])
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(b"\xff\xfe not toml [")
    with pytest.raises(ConfigError, match=r"garbage\.toml"):
        import_contracts(db, [garbage])


def test_reimport_replaces_the_contract(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(contract_toml("R-1"), encoding="utf-8")
    import_contracts(db, [path])
    path.write_text(contract_toml("R-1", 'title = "renewed"\n'), encoding="utf-8")
    import_contracts(db, [path])
    with db.read() as s:
        contract = get_contract(s, "R-1")
    assert contract is not None and contract.title == "renewed"
