"""The portal under uvicorn on 127.0.0.1 (a real socket and HTTP, not the in-process client)."""

from __future__ import annotations

import threading
import time

import httpx
import uvicorn
from portal_world import CORPUS, World


def test_machine_submission_over_real_http_on_loopback(world: World):
    server = uvicorn.Server(uvicorn.Config(world.app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
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
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert not thread.is_alive()
