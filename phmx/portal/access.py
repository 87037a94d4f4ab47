"""Who may call which route: one rule per route name, deny by default.

Every route of the application has a name; :data:`RULES` says who may call it. The application
enforces the table for every request (:func:`phmx.portal.security.authorize`), a route missing
from it answers 403 to everyone, and ``tests/portal/test_access_matrix.py`` walks the route table
so that a new route without a rule fails the suite. Which *objects* a caller may see within an
allowed route (its own submissions, its own packages) is the route's business: another
organisation's object answers 404, exactly as a missing one does, so nothing leaks its existence.
"""

from __future__ import annotations

from dataclasses import dataclass

from phmx.portal.directory import Role, Scope


@dataclass(frozen=True)
class Rule:
    """``roles`` may call the route; ``scope`` is what an API token needs for it (None: no token)."""

    roles: frozenset[Role]
    scope: Scope | None = None
    public: bool = False  # no sign-in needed (the login page, health, the OpenAPI document, CSS)


def _r(*roles: Role, scope: Scope | None = Scope.READ) -> Rule:
    return Rule(frozenset(roles), scope)


PUBLIC = Rule(frozenset(), None, public=True)
ANYONE = _r(*Role)
S, R, A, OP = Role.SUBMITTER, Role.RECIPIENT, Role.AUDITOR, Role.OPERATOR

RULES: dict[str, Rule] = {
    # public
    "login_form": PUBLIC,
    "login": PUBLIC,
    "oidc_login": PUBLIC,
    "oidc_callback": PUBLIC,
    "healthz": PUBLIC,
    "openapi": PUBLIC,
    "static": PUBLIC,
    # anyone signed in
    "home": ANYONE,
    "logout": Rule(frozenset(Role), None),
    "api_me": ANYONE,
    "api_publish_key": ANYONE,
    # submitters: their own landing prefix and receipts
    "submissions_page": _r(S, scope=None),
    "upload_form": _r(S, scope=None),
    "receipt_page": _r(S, scope=None),
    "api_submit": _r(S, scope=Scope.SUBMIT),
    "withdraw_form": _r(S, scope=None),
    "api_withdraw": _r(S, scope=Scope.SUBMIT),
    "api_submissions": _r(S),
    "api_receipt": _r(S),
    "api_acknowledgments": _r(S),
    # recipients: their own packages
    "packages_page": _r(R, scope=None),
    "package_page": _r(R, scope=None),
    "package_file": _r(R, scope=None),
    "api_packages": _r(R),
    "api_package": _r(R),
    "api_package_file": _r(R),
    # auditors: the ledger and the accounting of disclosures
    "audit_page": _r(A, scope=None),
    "disclosures_page": _r(A, scope=None),
    "api_ledger_verify": _r(A),
    "api_disclosures": _r(A),
    "decisions_page": _r(A, scope=None),
    "decision_disclosure_page": _r(A, scope=None),
    "api_decisions": _r(A),
    "api_disclosure_detail": _r(A),
    # operators: runs and stages (Airflow's REST API), triggering a run, quarantine summaries
    "operations_page": _r(OP, scope=None),
    "run_page": _r(OP, scope=None),
    "trigger_form": _r(OP, scope=None),
    "api_runs": _r(OP),
    "api_run": _r(OP),
    "api_trigger_run": _r(OP),
    "api_quarantine": _r(OP),
    # auditors and operators: one member's statement of how their data were used
    "statement_form": _r(A, OP, scope=None),
    "statement_page": _r(A, OP, scope=None),
    "statement_pdf": _r(A, OP, scope=None),
    "api_statement": _r(A, OP),
    "api_statement_pdf": _r(A, OP),
}


def rule_for(route_name: str | None) -> Rule | None:
    return RULES.get(route_name or "")
