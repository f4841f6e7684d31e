"""Catalog completeness: both languages say the same things, and every key a rule uses exists."""

from __future__ import annotations

import re
from typing import Dict, Set

import pytest
from babel.messages.pofile import read_po

from checks.catalog import CATALOG
from checks.evaluate import evaluate
from checks.facts import FactSet
from checks.params import Layer, Resolver
from checks.text import CHECKS_LOCALE, LANGS, Texts
from tests.checks.test_rules_status import CASES, CFG, NOW

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def family_keys(lang: str) -> Dict[str, Dict[str, str]]:
    """family file → {key: text} for one language."""
    out: Dict[str, Dict[str, str]] = {}
    for po in sorted((CHECKS_LOCALE / lang).glob("*.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        out[po.stem] = {str(m.id): str(m.string) for m in catalog if m.id}
    return out


def test_both_languages_have_the_same_files_keys_and_placeholders() -> None:
    zh, en = family_keys("zh_CN"), family_keys("en")
    assert sorted(zh) == sorted(en)
    for family in zh:
        assert sorted(zh[family]) == sorted(en[family]), family
        for key, text in zh[family].items():
            assert text.strip(), f"zh_CN/{family}.po: {key} is empty"
            assert en[family][key].strip(), f"en/{family}.po: {key} is empty"
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(en[family][key])), key


def test_keys_live_in_their_family_file() -> None:
    """`disk.usage.bad` belongs in disk.po: a key in another family's file is hard to find."""
    owner = {spec.id: spec.rule.__module__.rsplit(".", 1)[-1] for spec in CATALOG}
    for family, keys in family_keys("en").items():
        if family not in owner.values():
            continue  # common.po and other shared texts
        for key in keys:
            check = next((c for c in owner if key.startswith(f"{c}.")), None)
            if check is not None:
                assert owner[check] == family, f"{key} is in {family}.po, not {owner[check]}.po"


def test_every_check_has_texts() -> None:
    for lang in LANGS:
        keys = Texts(lang).keys()
        for spec in CATALOG:
            assert any(k.startswith(f"{spec.id}.") for k in keys), f"{lang}: no text for {spec.id}"


@pytest.mark.parametrize("lang", LANGS)
def test_every_key_the_rules_produce_exists(lang: str) -> None:
    """All checks of the catalog over the status test facts: each message and advice key exists."""
    texts = Texts(lang)
    used: Set[str] = set()
    for case in CASES:
        resolver = Resolver([Layer(name=CFG, checks=case.overrides)])
        for result in evaluate(FactSet(collected_at=NOW, **case.facts), resolver):
            used.add(result.message.key)
            if result.recommendation_key:
                used.add(result.recommendation_key)
    assert len(used) > 40
    missing = sorted(k for k in used if not texts.has(k))
    assert missing == []
