"""The portal under uvicorn on 127.0.0.1 (a real socket and HTTP, not the in-process client)."""

from __future__ import annotations

import httpx
from portal_world import CORPUS, World, serve


def test_machine_submission_over_real_http_on_loopback(world: World):
    with serve(world.app) as base:
        auth = {"Authorization": f"Bearer {world.tokens['submit']}"}
        with httpx.Client(base_url=base, timeout=30) as c:
            assert c.get("/healthz").json() == {"status": "ok"}
            assert c.get("/api/v1/me", headers=auth).status_code == 403  # a submit-only token reads nothing
            read = {"Authorization": f"Bearer {world.tokens['read']}"}
            assert c.get("/api/v1/me", headers=read).json()["organisation"] == "lhj_alameda"
            assert c.get("/api/v1/me").status_code == 401
            r = c.post("/api/v1/submissions", headers=auth, data={"feed": "immunizations_vxu", "period": "2026-04"},
                       files={"file": ("over_http.hl7", (CORPUS / "hl7v2_vxu" / "nist_iz_001.hl7").read_bytes())})
            assert r.status_code == 201, r.text
            assert r.headers["x-frame-options"] == "DENY"
    assert (world.home / "landing" / "cair2" / "immunizations_vxu" / "2026-04" / "over_http.hl7").is_file()
