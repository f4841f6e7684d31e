"""The report built from a collector database: what the PDF says, its fonts, and page images."""

from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from collector.db.engine import Database
from collector.db.migrate import upgrade
from collector.db.models_reports import ReportRow
from collector.periods import parse
from collector.reports.store import build
from collector.settings import CollectorSettings
from tests.conftest import require_service
from tests.reports.helpers import EXAMPLE
from tests.reports.seed import seed

pytestmark = pytest.mark.py311

END_OF_Q3 = datetime(2026, 9, 30, 16, 0, tzinfo=timezone.utc)  # 1 Oct 00:00 Asia/Shanghai


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    require_service(shutil.which("pdftotext") is not None, "poppler-utils not installed")
    tmp = tmp_path_factory.mktemp("report")
    db = Database(f"sqlite:///{tmp / 'x.db'}")
    upgrade(db)
    runs = [END_OF_Q3 - timedelta(days=30), END_OF_Q3 - timedelta(hours=6)]
    contract = seed(
        db,
        EXAMPLE,
        ["app01", "db01"],
        run_times=runs,
        samples_until=END_OF_Q3 - timedelta(hours=1),
        sample_step_minutes=5,
    )
    settings = CollectorSettings(
        home=tmp, database_url=db.url, smtp={"from": "reports@vendor.example"}
    )
    out: dict[str, bytes] = {}
    for lang in ("zh_CN", "en"):
        outcome = build(
            db,
            settings,
            contract,
            parse("2026-Q3", contract),
            worker="t",
            lang=lang,
            rebuild=True,
            send_mail=False,
            now=END_OF_Q3 + timedelta(hours=1),
        )
        assert outcome is not None and outcome.built
        with db.read() as session:
            row = session.get(ReportRow, outcome.report_id)
            assert row is not None and row.pdf and row.html
            out[lang] = row.pdf
            out[f"{lang}.html"] = zlib.decompress(row.html)
    db.dispose()
    return out


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_chinese_pdf_has_contract_customer_headings_and_figures(
    built: dict[str, bytes], tmp_path: Path
) -> None:
    text = _text(built["zh_CN"], tmp_path)
    for needle in (
        "巡检报告",
        "HT-2026-001",
        "示例科技有限公司",
        "巡检软件服务有限公司",
        "常规级",
        "总体结论",
        "服务履约情况",
        "系统状态",
        "报警日志",
        "故障错误信息",
        "24小时历史",
        "建议",
        "附录",
        "巡检工程师",
        "客户确认",
        "91.5%",
        "87.3%",
        "97.5",
        "blk_update_request",
        "2026-Q3",
    ):
        assert needle in text, needle
    assert re.search(r"第\s*2\s*页\s*/\s*共\s*\d+\s*页", text)  # page numbers in the footer
    # the example contract has four quarterly inspections a year and app01/db01 under contract
    assert "已巡检 2 台 / 合同内" in text


def test_english_pdf(built: dict[str, bytes], tmp_path: Path) -> None:
    text = _text(built["en"], tmp_path)
    for needle in (
        "Inspection Report",
        "HT-2026-001",
        "Summary",
        "Contract fulfilment",
        "System status",
        "Recommendations",
        "Appendix",
        "Sign-off",
        "91.5%",
        "Page 2 of",
    ):
        assert needle in text, needle


def test_pdf_embeds_cjk_fonts(built: dict[str, bytes], tmp_path: Path) -> None:
    path = tmp_path / "r.pdf"
    path.write_bytes(built["zh_CN"])
    fonts = subprocess.run(
        ["pdffonts", str(path)], capture_output=True, text=True, check=True
    ).stdout
    cjk = [line for line in fonts.splitlines() if "CJK" in line]
    assert cjk, fonts
    assert all(" yes yes " in line for line in cjk), fonts  # embedded and subset


def test_html_is_standalone_and_escaped(built: dict[str, bytes]) -> None:
    html = built["zh_CN.html"].decode()
    assert 'src="data:image/png;base64,' in html
    assert "cid:" not in html
    assert "<script" not in html


def test_page_images_saved(built: dict[str, bytes], artifacts: Path, tmp_path: Path) -> None:
    require_service(shutil.which("pdftoppm") is not None, "poppler-utils not installed")
    for lang in ("zh_CN", "en"):
        pdf = tmp_path / f"{lang}.pdf"
        pdf.write_bytes(built[lang])
        (artifacts / f"report-{lang}.pdf").write_bytes(built[lang])
        subprocess.run(
            ["pdftoppm", "-r", "50", "-png", str(pdf), str(artifacts / f"report-{lang}")],
            check=True,
        )
    assert sorted(artifacts.glob("report-zh_CN-*.png"))
