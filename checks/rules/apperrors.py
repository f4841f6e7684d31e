"""Application errors (故障错误信息): log4j/logback, Python and Java error records in the window."""

from __future__ import annotations

from typing import List

from checks.facts import FactSet
from checks.model import Category, CheckResult
from checks.rules.logs import TemplateParams, template_results
from checks.spec import CheckSpec, RuleContext


def app_errors(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    return template_results(facts, ctx, "app")


CHECKS = [
    CheckSpec("errors.app", Category.errors, TemplateParams, app_errors),
]
