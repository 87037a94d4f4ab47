"""docs/openapi.json is the API the code serves (regenerate: phmx portal openapi --out docs/openapi.json)."""

from __future__ import annotations

import json
from pathlib import Path

from phmx.portal.cli import openapi_document

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_committed_openapi_document_is_current():
    assert json.loads(DOC.read_text()) == json.loads(json.dumps(openapi_document())), \
        "the API changed: run `phmx portal openapi --out docs/openapi.json` and commit it"


def test_no_api_route_takes_a_member_id_in_its_url():
    doc = openapi_document()
    for path, ops in doc["paths"].items():
        assert "member" not in path
        for op in ops.values():
            assert all("member" not in p["name"] for p in op.get("parameters", [])), path
