"""A member's statement of how their data were used, in English or Spanish, as a page and a PDF.

CalAIM asks that a member can learn how their data were used. An operator or auditor produces the
statement for one member (the member id arrives in a POST body, never a URL); it holds:

* every disclosure of the member's data, from the ledger's per-member disclosure rows
  (:func:`consent.audit.disclosures_for_member`: only disclosures that went out), with recipient,
  purpose, date and data class;
* the member's consents in force when the statement is made, from ``silver.consent`` through the
  member's own source records in ``gold.member_xwalk`` (newest version of each consent: active,
  started, not expired, not revoked).

Both reads filter on the member before anything is loaded (delta-rs filters on the member's id
and source-person ids), so no other member's row is ever in the statement's data, and they need
no engine. The page and the PDF are rendered from one Jinja2 template (``statement_doc.html.j2``);
the PDF by WeasyPrint, which is given the stylesheet directly and may fetch nothing else.

The wording is ours, in :data:`TEXT` (one entry per language); purposes and data classes are
named in plain language by :data:`PURPOSES` and :data:`DATA_CLASSES`, falling back to the code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from phmx import lakehouse
from phmx.tables import CONSENT, MEMBER_XWALK

HERE = Path(__file__).resolve().parent
LANGUAGES = ("en", "es")
IN_FORCE = "active"

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Statement of how your health information was used",
        "intro": "This statement lists every time the California population health data hub shared information "
                 "about you with another organisation, and the consents you have given that are in force today.",
        "member": "Member id",
        "generated": "Prepared on",
        "by": "Prepared by",
        "disclosures": "When your information was shared",
        "no_disclosures": "The hub has not shared information about you.",
        "date": "Date",
        "recipient": "Shared with",
        "purpose": "Why",
        "data_class": "What kind of information",
        "consents": "Your consents in force",
        "no_consents": "No consent of yours is in force today.",
        "consent": "Consent",
        "grantor": "Given by",
        "from": "In force from",
        "until": "Until",
        "open_ended": "until you revoke it",
        "allows": "What it says",
        "permit": "allows sharing",
        "deny": "does not allow sharing",
        "of": "of",
        "with": "with",
        "for": "for",
        "any_data": "any of your information",
        "anyone": "any recipient",
        "any_purpose": "any purpose",
        "role:treating": "your treating providers",
        "self": "you",
        "guardian": "your parent or guardian",
        "minor_self": "you (as a minor)",
        "questions": "If something here looks wrong, or to revoke a consent, contact your health plan or county, "
                     "or the hub's privacy office. You may ask for this statement in English or Spanish.",
        "language_name": "English",
    },
    "es": {
        "title": "Declaración sobre cómo se usó su información de salud",
        "intro": "Esta declaración enumera cada vez que el centro de datos de salud poblacional de California "
                 "compartió información sobre usted con otra organización, y los consentimientos que usted ha "
                 "dado que están vigentes hoy.",
        "member": "Número de miembro",
        "generated": "Preparada el",
        "by": "Preparada por",
        "disclosures": "Cuándo se compartió su información",
        "no_disclosures": "El centro no ha compartido información sobre usted.",
        "date": "Fecha",
        "recipient": "Compartida con",
        "purpose": "Para qué",
        "data_class": "Qué tipo de información",
        "consents": "Sus consentimientos vigentes",
        "no_consents": "Hoy no está vigente ningún consentimiento suyo.",
        "consent": "Consentimiento",
        "grantor": "Otorgado por",
        "from": "Vigente desde",
        "until": "Hasta",
        "open_ended": "hasta que usted lo revoque",
        "allows": "Qué dice",
        "permit": "permite compartir",
        "deny": "no permite compartir",
        "of": "de",
        "with": "con",
        "for": "para",
        "any_data": "cualquier información suya",
        "anyone": "cualquier destinatario",
        "any_purpose": "cualquier fin",
        "role:treating": "sus proveedores de tratamiento",
        "self": "usted",
        "guardian": "su padre, madre o tutor",
        "minor_self": "usted (como menor de edad)",
        "questions": "Si algo aquí parece incorrecto, o para revocar un consentimiento, comuníquese con su plan de "
                     "salud o su condado, o con la oficina de privacidad del centro. Puede pedir esta declaración "
                     "en inglés o en español.",
        "language_name": "Español",
    },
}

# HL7 v3 PurposeOfUse codes the policy uses (consent/policies), in plain language.
PURPOSES: dict[str, dict[str, str]] = {
    "TREAT": {"en": "treatment", "es": "tratamiento"},
    "ETREAT": {"en": "emergency treatment", "es": "tratamiento de emergencia"},
    "HPAYMT": {"en": "paying for health care", "es": "pago de la atención médica"},
    "HOPERAT": {"en": "health care operations", "es": "operaciones de atención médica"},
    "PUBHLTH": {"en": "public health", "es": "salud pública"},
    "HRESCH": {"en": "health research", "es": "investigación de salud"},
    "HLEGAL": {"en": "legal proceedings", "es": "procedimientos legales"},
}

# The policy's data classes (consent/policies), plus the feeds' own class names, in plain language.
DATA_CLASSES: dict[str, dict[str, str]] = {
    "GENERAL": {"en": "general health information", "es": "información de salud general"},
    "SUD": {"en": "substance use disorder information", "es": "información sobre trastornos por consumo de sustancias"},
    "SUDCN": {"en": "substance use counseling notes", "es": "notas de consejería sobre consumo de sustancias"},
    "MH": {"en": "mental health information", "es": "información de salud mental"},
    "PSYTHPN": {"en": "psychotherapy notes", "es": "notas de psicoterapia"},
    "HIV": {"en": "HIV test results and diagnoses", "es": "resultados y diagnósticos de VIH"},
    "STD": {"en": "sexually transmitted infection information", "es": "información sobre infecciones de transmisión sexual"},
    "SDV": {"en": "sexual assault, abuse or domestic violence information",
            "es": "información sobre agresión sexual, abuso o violencia doméstica"},
    "IMMUNIZATION": {"en": "immunization records", "es": "registros de vacunación"},
}


def _label(table: dict[str, dict[str, str]], code: str, lang: str) -> str:
    entry = table.get(code.upper())
    return entry[lang] if entry else code


@dataclass
class Statement:
    """What one member's statement says (the page and the PDF render this, nothing else)."""

    member_id: str
    language: str
    generated_at: datetime
    prepared_by: str
    disclosures: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> dict[str, str]:
        return TEXT[self.language]

    def to_dict(self) -> dict[str, Any]:
        return {"member_id": self.member_id, "language": self.language,
                "generated_at": self.generated_at.isoformat(), "prepared_by": self.prepared_by,
                "disclosures": self.disclosures, "consents": self.consents}


# ---- reading one member's consents ----------------------------------------------------------------
def _source_records(member_id: str) -> set[tuple[str, str]]:
    """(source, source_person_id) of every source record linked to the member."""
    if not lakehouse.delta_exists(MEMBER_XWALK):
        return set()
    rows = lakehouse.open_delta(MEMBER_XWALK).to_pyarrow_table(
        columns=["source", "source_person_id"], filters=[("member_id", "=", member_id)])
    return {(str(r["source"]), str(r["source_person_id"])) for r in rows.to_pylist()}


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def consents_in_force(member_id: str, at: datetime) -> list[dict[str, Any]]:
    """The member's consents in force at ``at``: the newest version of each, active, begun, not
    ended, not revoked; with the provisions that say what each allows or refuses."""
    records = _source_records(member_id)
    if not records or not lakehouse.delta_exists(CONSENT):
        return []
    person_ids = sorted({pid for _, pid in records})
    rows = lakehouse.open_delta(CONSENT).to_pyarrow_table(filters=[("source_person_id", "in", person_ids)])
    newest: dict[str, dict[str, Any]] = {}
    for r in rows.to_pylist():
        if (r["source"], r["source_person_id"]) not in records:
            continue  # the same local id in another sender's id space is another person
        held = newest.get(r["consent_id"])
        if held is None or int(r["version"]) > int(held["version"]):
            newest[r["consent_id"]] = r
    at = _aware(at) or datetime.now(UTC)
    out = []
    for r in newest.values():
        start, end, revoked = _aware(r["period_start"]), _aware(r["period_end"]), _aware(r["revoked_at"])
        if r["status"] != IN_FORCE or (start and start > at) or (end and end <= at) or (revoked and revoked <= at):
            continue
        out.append({"consent_id": r["consent_id"], "version": int(r["version"]), "grantor": r["grantor"] or "",
                    "policy": r["policy"] or "", "period_start": start.isoformat() if start else None,
                    "period_end": end.isoformat() if end else None,
                    "provisions": _provisions(r["provisions"])})
    out.sort(key=lambda c: (c["period_start"] or "", c["consent_id"]))
    return out


def _provisions(raw: str | None) -> list[dict[str, Any]]:
    nodes = json.loads(raw) if raw else []
    return [{"path": str(n.get("path", "")), "effect": str(n.get("effect") or "").lower(),
             "purposes": list(n.get("purposes") or []), "recipients": list(n.get("recipients") or []),
             "data_classes": list(n.get("data_classes") or [])} for n in nodes]


# ---- the statement ----------------------------------------------------------------------------------
def build(member_id: str, language: str, *, prepared_by: str, recipient_names: dict[str, str],
          at: datetime | None = None) -> Statement:
    """The statement for one member in one language (``en`` or ``es``)."""
    from phmx.portal import views

    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    now = at or datetime.now(UTC).replace(microsecond=0)
    disclosures = [{"disclosed_at": d["disclosed_at"], "recipient": d["recipient"],
                    "recipient_name": recipient_names.get(d["recipient"], d["recipient"]),
                    "purpose": d["purpose"], "purpose_text": _label(PURPOSES, d["purpose"], language),
                    "data_class": d["data_class"], "data_class_text": _label(DATA_CLASSES, d["data_class"], language)}
                   for d in views.disclosures(member_id)]
    consents = consents_in_force(member_id, now)
    t = TEXT[language]
    for c in consents:
        c["grantor_text"] = t.get(c["grantor"].lower(), c["grantor"])
        c["says"] = [_sentence(p, t, language, recipient_names) for p in c["provisions"] if p["effect"]]
    return Statement(member_id, language, now, prepared_by, disclosures, consents)


def _sentence(p: dict[str, Any], t: dict[str, str], lang: str, names: dict[str, str]) -> str:
    """One provision in plain words: "allows sharing of <classes> with <recipients> for <purposes>"."""
    classes = ", ".join(_label(DATA_CLASSES, c, lang) for c in p["data_classes"]) or t["any_data"]
    recipients = ", ".join(t.get(r, names.get(r, r)) for r in p["recipients"]) or t["anyone"]
    purposes = ", ".join(_label(PURPOSES, c, lang) for c in p["purposes"]) or t["any_purpose"]
    effect = t["permit"] if p["effect"] == "permit" else t["deny"]
    return f"{effect} {t['of']} {classes} {t['with']} {recipients} {t['for']} {purposes}"


# ---- rendering --------------------------------------------------------------------------------------
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def render_document(s: Statement) -> str:
    """The statement as a standalone HTML document (what the PDF is made from)."""
    return _env().get_template("statement_pdf.html.j2").render(s=s, t=s.text)


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    raise ValueError("the member statement fetches no resources")


def render_pdf(s: Statement) -> bytes:
    """The statement as PDF (WeasyPrint; the stylesheet given directly, no resource fetched)."""
    from weasyprint import CSS, HTML

    css = CSS(filename=str(HERE / "static" / "statement-print.css"), url_fetcher=_no_fetch)
    pdf: bytes = HTML(string=render_document(s), url_fetcher=_no_fetch).write_pdf(stylesheets=[css])
    return pdf
