"""One signing module, a key per purpose: the ledger's and the feeds' keys never stand in for each
other, both live where the earlier modules kept them (so existing signatures verify), and a
rotation keeps old public keys published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phmx import settings
from phmx.errors import PrivacyError
from privacy import signing


@pytest.fixture
def keys(phmx_home):
    from privacy.keys import reset_provider_cache

    reset_provider_cache()
    yield phmx_home
    reset_provider_cache()


def test_a_key_per_purpose_in_the_places_verifiers_look(keys):
    ledger_key = signing.get_signer(signing.LEDGER)
    feed_key = signing.get_signer(signing.PUBLISH)
    assert ledger_key.key_id != feed_key.key_id
    s = settings.load()
    # The same folders and provider labels as before the merge: keys made then load now.
    assert Path(s.keys_dir, "ledger-signing", f"{ledger_key.key_id}.wrapped").is_file()
    assert Path(s.keys_dir, "publish-signing", f"{feed_key.key_id}.wrapped").is_file()
    assert Path(s.ledger_root, "audit", "ledger_keys", f"{ledger_key.key_id}.pem").is_file()
    published = json.loads(Path(s.publish_root, "_keys", f"{feed_key.key_id}.json").read_text())
    assert published["fingerprint"] == feed_key.publisher().fingerprint
    assert set(signing.load_public_keys(signing.LEDGER)) == {ledger_key.key_id}
    assert set(signing.load_public_keys(signing.PUBLISH)) == {feed_key.key_id}
    # Loading again gives the same key (unwrapped by the provider), not a new one.
    assert signing.get_signer(signing.LEDGER).key_id == ledger_key.key_id
    msg = b"phmx-ledger-checkpoint-v1\n{}"
    assert signing.verify_b64(ledger_key.public_key(), msg, ledger_key.sign_b64(msg))
    assert not signing.verify(feed_key.public_key(), msg, ledger_key.sign(msg))
    assert not signing.verify_b64(ledger_key.public_key(), msg, "not base64!")


def test_rotation_keeps_old_public_keys(keys):
    old = signing.get_signer(signing.LEDGER)
    new = signing.rotate(signing.LEDGER)
    assert new.key_id != old.key_id
    assert set(signing.load_public_keys(signing.LEDGER)) == {old.key_id, new.key_id}
    assert signing.get_signer(signing.LEDGER).key_id == new.key_id


def test_a_bad_public_key_file_is_named_not_raised_raw(keys, tmp_path):
    bad = tmp_path / "x.pem"
    bad.write_text("not a key")
    with pytest.raises(PrivacyError, match="not a valid PEM"):
        signing.load_public_keys(signing.LEDGER, [str(bad)])
    with pytest.raises(PrivacyError, match="no ledger signing key"):
        signing.get_signer(signing.LEDGER, create=False)
