"""IAM confinement, checked on the policies Terraform would create for each tfvars file.

The role policies are rendered from the aws_iam_policy_document blocks with for_each expanded for
every submitter and recipient in the tfvars, and bucket / key ARNs resolved through the module
outputs; requests are then simulated against those real ARNs.
"""

from __future__ import annotations

import json

import pytest
from tf_eval import Module, decide

S3_READ = {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation",
           "s3:GetObjectRetention", "s3:GetObjectLegalHold", "s3:GetBucketObjectLockConfiguration",
           "s3:GetBucketVersioning"}
KMS_READ = {"kms:Decrypt", "kms:DescribeKey"}
PROBE_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetObjectVersion",
                 "s3:PutObjectAcl", "s3:DeleteObjectVersion", "s3:PutBucketPolicy"]
ZONES = ["landing", "lakehouse", "outbox", "publish", "ledger", "artifacts", "logs"]


def _bucket_arns(env: Module) -> dict[str, str]:
    return env.child("storage").output("bucket_arns")


def _role_policy(env: Module, rtype: str, name: str, key: str | None = None) -> dict:
    inst = env.child("iam").instances("resource", rtype, name)
    inst = inst[key] if key is not None else inst
    return json.loads(inst.arg("policy"))


def _trust(env: Module, name: str, key: str | None = None) -> dict:
    inst = env.child("iam").instances("resource", "aws_iam_role", name)
    inst = inst[key] if key is not None else inst
    return json.loads(inst.arg("assume_role_policy"))


def _allow_statements(pol: dict) -> list[dict]:
    return [s for s in pol["Statement"] if s["Effect"] == "Allow"]


def _obj(bucket_arn: str, key: str) -> str:
    return f"{bucket_arn}/{key}"


def _ids(env: Module, var: str) -> list[str]:
    return list(env.var(var))


# ---------------------------------------------------------------- submitters
def test_every_submitter_gets_its_own_role_and_policy(env):
    iam = env.child("iam")
    roles = iam.instances("resource", "aws_iam_role", "submitter")
    policies = iam.instances("resource", "aws_iam_role_policy", "submitter")
    assert set(roles) == set(policies) == set(_ids(env, "submitters")) and len(roles) >= 2
    for sid, role in roles.items():
        assert role.get("arn").endswith(f":role/{env.local('name_prefix')}-submitter-{sid}")
        assert policies[sid].arg("role") == role.get("id")


def test_submitter_can_only_put_own_landing_prefix_and_read_own_receipts(env):
    b = _bucket_arns(env)
    subs = _ids(env, "submitters")
    for me in subs:
        pol = [_role_policy(env, "aws_iam_role_policy", "submitter", me)]
        assert decide(pol, "s3:PutObject", _obj(b["landing"], f"{me}/enrollment/2025-01/file.csv")) == "Allow"
        assert decide(pol, "s3:GetObject", _obj(b["outbox"], f"{me}/receipts/sub-1.json")) == "Allow"
        assert decide(pol, "s3:ListBucket", b["outbox"], {"s3:prefix": f"{me}/"}) == "Allow"
        assert decide(pol, "s3:ListBucket", b["outbox"], {"s3:prefix": f"{me}/receipts/"}) == "Allow"
        # not even its own uploads can be read back or listed
        assert decide(pol, "s3:GetObject", _obj(b["landing"], f"{me}/enrollment/2025-01/file.csv")) != "Allow"
        assert decide(pol, "s3:ListBucket", b["landing"], {"s3:prefix": f"{me}/"}) != "Allow"
        assert decide(pol, "s3:DeleteObject", _obj(b["landing"], f"{me}/x.csv")) != "Allow"
        # a bucket-wide listing of the outbox is refused
        assert decide(pol, "s3:ListBucket", b["outbox"], {"s3:prefix": ""}) != "Allow"
        assert decide(pol, "s3:ListBucket", b["outbox"], {}) != "Allow"
        # a prefix that merely starts with its id is another submitter's
        assert decide(pol, "s3:PutObject", _obj(b["landing"], f"{me}x/evil.csv")) != "Allow"
        assert decide(pol, "s3:ListBucket", b["outbox"], {"s3:prefix": f"{me}x/"}) != "Allow"
        for other in subs:
            if other == me:
                continue
            for action in PROBE_ACTIONS:
                assert decide(pol, action, _obj(b["landing"], f"{other}/feed/file.csv")) != "Allow"
                assert decide(pol, action, _obj(b["outbox"], f"{other}/receipts/r.json")) != "Allow"
            assert decide(pol, "s3:ListBucket", b["outbox"], {"s3:prefix": f"{other}/"}) != "Allow"
        for zone in ("lakehouse", "publish", "ledger", "artifacts", "logs"):
            for action in PROBE_ACTIONS:
                assert decide(pol, action, _obj(b[zone], f"{me}/anything")) != "Allow", (me, zone, action)
                assert decide(pol, action, b[zone], {"s3:prefix": ""}) != "Allow", (me, zone, action)


def test_submitter_policy_grants_exactly_the_expected_pairs(env):
    b = _bucket_arns(env)
    phi_key = env.child("kms").output("phi_key_arn")
    region = env.facts["region"]
    for me in _ids(env, "submitters"):
        pol = _role_policy(env, "aws_iam_role_policy", "submitter", me)
        pairs = {(a, r) for s in _allow_statements(pol) for a in s["Action"] for r in s["Resource"]}
        assert pairs == {
            ("s3:PutObject", f"{b['landing']}/{me}/*"),
            ("s3:ListBucket", b["outbox"]),
            ("s3:GetObject", f"{b['outbox']}/{me}/*"),
            ("kms:GenerateDataKey", phi_key),
            ("kms:Decrypt", phi_key),
        }
        assert all("NotAction" not in s and "NotResource" not in s for s in pol["Statement"])
        for s in _allow_statements(pol):
            if any(a.startswith("kms:") for a in s["Action"]):
                cond = s["Condition"]["StringEquals"]
                assert cond["kms:ViaService"] == [f"s3.{region}.amazonaws.com"]
                assert set(cond["kms:EncryptionContext:aws:s3:arn"]) <= {b["landing"], b["outbox"]}
            if s["Action"] == ["s3:ListBucket"]:
                assert s["Condition"] == {"StringLike": {"s3:prefix": [f"{me}/", f"{me}/*"]}}


def test_submitter_kms_use_is_bound_to_its_buckets(env):
    b = _bucket_arns(env)
    phi_key = env.child("kms").output("phi_key_arn")
    via = f"s3.{env.facts['region']}.amazonaws.com"
    me = _ids(env, "submitters")[0]
    pol = [_role_policy(env, "aws_iam_role_policy", "submitter", me)]
    ok = {"kms:ViaService": via, "kms:EncryptionContext:aws:s3:arn": b["landing"]}
    assert decide(pol, "kms:GenerateDataKey", phi_key, ok) == "Allow"
    assert decide(pol, "kms:Decrypt", phi_key, {**ok, "kms:EncryptionContext:aws:s3:arn": b["outbox"]}) == "Allow"
    assert decide(pol, "kms:Decrypt", phi_key, {**ok, "kms:EncryptionContext:aws:s3:arn": b["lakehouse"]}) != "Allow"
    assert decide(pol, "kms:Decrypt", phi_key, {**ok, "kms:EncryptionContext:aws:s3:arn": b["publish"]}) != "Allow"
    assert decide(pol, "kms:Decrypt", phi_key, {"kms:EncryptionContext:aws:s3:arn": b["landing"]}) != "Allow"
    assert decide(pol, "kms:Decrypt", env.child("kms").output("audit_key_arn"), ok) != "Allow"


def test_submitter_trust_is_the_configured_partner_with_external_id(env):
    for me, cfg in env.var("submitters").items():
        trust = _trust(env, "submitter", me)
        (st,) = trust["Statement"]
        assert st["Action"] == ["sts:AssumeRole"]
        assert st["Principal"] == {"AWS": cfg["trusted_principal_arns"]}
        assert "*" not in json.dumps(st["Principal"])
        if cfg.get("external_id"):
            assert st["Condition"] == {"StringEquals": {"sts:ExternalId": [cfg["external_id"]]}}
        else:
            assert "Condition" not in st


# ---------------------------------------------------------------- recipients
def test_recipient_reads_only_its_publish_prefix_and_writes_nothing(env):
    b = _bucket_arns(env)
    recs = _ids(env, "recipients")
    assert len(recs) >= 2
    for me in recs:
        pol_doc = _role_policy(env, "aws_iam_role_policy", "recipient", me)
        pol = [pol_doc]
        actions = {a for s in _allow_statements(pol_doc) for a in s["Action"]}
        assert actions <= S3_READ | KMS_READ, f"recipient {me} has non-read actions {actions - S3_READ - KMS_READ}"
        assert not any("*" in a for a in actions)
        key = f"{me}/lhj_measures/2025Q1/measures.parquet"
        assert decide(pol, "s3:GetObject", _obj(b["publish"], key)) == "Allow"
        assert decide(pol, "s3:ListBucket", b["publish"], {"s3:prefix": f"{me}/"}) == "Allow"
        for action in ("s3:PutObject", "s3:DeleteObject", "s3:PutObjectAcl", "s3:DeleteObjectVersion"):
            assert decide(pol, action, _obj(b["publish"], key)) != "Allow"
        assert decide(pol, "s3:ListBucket", b["publish"], {"s3:prefix": ""}) != "Allow"
        for other in recs:
            if other != me:
                assert decide(pol, "s3:GetObject", _obj(b["publish"], f"{other}/feed/p/x.csv")) != "Allow"
                assert decide(pol, "s3:ListBucket", b["publish"], {"s3:prefix": f"{other}/"}) != "Allow"
        for zone in ("landing", "lakehouse", "outbox", "ledger", "artifacts", "logs"):
            for action in PROBE_ACTIONS:
                assert decide(pol, action, _obj(b[zone], f"{me}/x")) != "Allow", (me, zone, action)
        resources = {r for s in _allow_statements(pol_doc) for r in s["Resource"]}
        assert resources == {b["publish"], f"{b['publish']}/{me}/*", env.child("kms").output("phi_key_arn")}


# ---------------------------------------------------------------- auditor
def test_auditor_reads_only_ledger_and_logs(env):
    b = _bucket_arns(env)
    pol_doc = _role_policy(env, "aws_iam_role_policy", "auditor")
    pol = [pol_doc]
    actions = {a for s in _allow_statements(pol_doc) for a in s["Action"]}
    assert actions <= S3_READ | KMS_READ
    s3_resources = {r for s in _allow_statements(pol_doc) for r in s["Resource"] if r.startswith("arn:aws:s3:")}
    assert s3_resources <= {b["ledger"], f"{b['ledger']}/*", b["logs"], f"{b['logs']}/*"}
    assert decide(pol, "s3:GetObject", _obj(b["ledger"], "ledger/2025/01/entries-0001.jsonl")) == "Allow"
    assert decide(pol, "s3:GetObject", _obj(b["logs"], "cloudtrail/AWSLogs/x.json.gz")) == "Allow"
    assert decide(pol, "s3:ListBucket", b["ledger"]) == "Allow"
    for zone in ("landing", "lakehouse", "outbox", "publish", "artifacts"):
        for action in PROBE_ACTIONS:
            assert decide(pol, action, _obj(b[zone], "x")) != "Allow"
            assert decide(pol, action, b[zone]) != "Allow"
    for zone in ("ledger", "logs"):
        for action in ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention",
                       "s3:BypassGovernanceRetention", "s3:PutBucketPolicy"):
            assert decide(pol, action, _obj(b[zone], "x")) != "Allow"
    assert decide(pol, "kms:Decrypt", env.child("kms").output("phi_key_arn"),
                  {"kms:ViaService": f"s3.{env.facts['region']}.amazonaws.com"}) != "Allow"


def test_auditor_role_requires_mfa(env):
    (st,) = _trust(env, "auditor")["Statement"]
    assert st["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": ["true"]}}
    assert st["Principal"] == {"AWS": env.var("auditor_trusted_principal_arns")}


# ---------------------------------------------------------------- pipeline
def test_pipeline_reads_and_writes_every_zone_but_only_appends_to_the_ledger(env):
    b = _bucket_arns(env)
    iam = env.child("iam")
    data = json.loads(iam.instances("resource", "aws_iam_policy", "pipeline_data").arg("policy"))
    for role in ("pipeline_airflow", "pipeline_spark"):
        att = iam.instances("resource", "aws_iam_role_policy_attachment", f"{role}_data")
        assert att.arg("policy_arn") == iam.instances("resource", "aws_iam_policy", "pipeline_data").get("arn")
        assert att.arg("role") == iam.instances("resource", "aws_iam_role", role).get("name")
    pol = [data]
    for zone in ("landing", "lakehouse", "outbox", "publish"):
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert decide(pol, action, _obj(b[zone], "x/y")) == "Allow", (zone, action)
        assert decide(pol, "s3:ListBucket", b[zone]) == "Allow"
    assert decide(pol, "s3:PutObject", _obj(b["ledger"], "ledger/e.jsonl")) == "Allow"
    assert decide(pol, "s3:GetObject", _obj(b["ledger"], "ledger/e.jsonl")) == "Allow"
    for action in ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention"):
        assert decide(pol, action, _obj(b["ledger"], "ledger/e.jsonl")) != "Allow"
    for action in PROBE_ACTIONS:
        assert decide(pol, action, _obj(b["logs"], "x")) != "Allow"
    ops = json.loads(iam.instances("resource", "aws_iam_role_policy", "pipeline_airflow_ops").arg("policy"))
    spark_arn = iam.output("pipeline_spark_role_arn")
    assert decide([ops], "iam:PassRole", spark_arn, {"iam:PassedToService": "emr-serverless.amazonaws.com"}) == "Allow"
    assert decide([ops], "iam:PassRole", spark_arn, {"iam:PassedToService": "ec2.amazonaws.com"}) != "Allow"
    assert decide([ops], "iam:PassRole", iam.output("auditor_role_arn"),
                  {"iam:PassedToService": "emr-serverless.amazonaws.com"}) != "Allow"


def test_no_identity_policy_uses_wildcard_actions_or_resources_except_metrics(env):
    iam = env.child("iam")
    docs = [json.loads(i.arg("policy")) for i in iam.all_instances("aws_iam_role_policy")]
    docs += [json.loads(i.arg("policy")) for i in iam.all_instances("aws_iam_policy")]
    docs += [json.loads(i.arg("policy")) for i in env.child("cloudtrail").all_instances("aws_iam_role_policy")]
    assert len(docs) >= 2 * len(env.var("submitters")) // 2 + 4
    for doc in docs:
        for s in doc["Statement"]:
            assert not any(a == "*" or a.endswith(":*") for a in s["Action"]), s
            if "*" in s["Resource"]:
                # actions without resource-level permissions (MWAA metrics, account-level S3 setting)
                assert s["Action"] in (["cloudwatch:PutMetricData"], ["s3:GetAccountPublicAccessBlock"]), s


# ---------------------------------------------------------------- key policies
def _key_policy(env: Module, key: str) -> dict:
    return json.loads(env.child("kms").instances("resource", "aws_kms_key", key).arg("policy"))


def _stmt(pol: dict, sid: str) -> dict:
    (s,) = [s for s in pol["Statement"] if s.get("Sid") == sid]
    return s


def test_key_policies_separate_administration_from_use(env):
    crypto = {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo"}
    for key in ("phi", "audit"):
        pol = _key_policy(env, key)
        admin = _stmt(pol, "KeyAdministrationNoUse")
        assert not crypto & set(admin["Action"])
        assert not any(a.endswith("*") for a in admin["Action"])
        if env.var("kms_admin_arns"):
            assert admin["Condition"]["ArnEquals"]["aws:PrincipalArn"] == env.var("kms_admin_arns")
        for s in pol["Statement"]:
            assert s["Principal"] != {"AWS": ["*"]} and "*" not in s["Principal"], s
            assert "kms:*" not in s["Action"]


def test_phi_key_is_usable_through_s3_only_by_hub_roles(env):
    iam = env.child("iam")
    pol = _key_policy(env, "phi")
    use = _stmt(pol, "UseThroughS3ByNamedRoles")
    principals = set(use["Condition"]["ArnEquals"]["aws:PrincipalArn"])
    expected = set(iam.output("pipeline_role_arns")) | set(iam.output("submitter_role_arns").values()) | set(
        iam.output("recipient_role_arns").values())
    assert principals == expected
    assert iam.output("auditor_role_arn") not in principals
    assert use["Condition"]["StringEquals"]["kms:ViaService"] == [f"s3.{env.facts['region']}.amazonaws.com"]
    direct = _stmt(pol, "DirectUseByPipelineRoles")
    assert set(direct["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == set(iam.output("pipeline_role_arns"))


def test_audit_key_is_used_by_pipeline_auditor_and_cloudtrail_only(env):
    iam = env.child("iam")
    pol = _key_policy(env, "audit")
    ledger = _stmt(pol, "LedgerThroughS3ByNamedRoles")
    assert set(ledger["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == set(iam.output("pipeline_role_arns")) | {
        iam.output("auditor_role_arn")}
    trail_arn = env.child("cloudtrail").output("arn")
    ct = _stmt(pol, "CloudTrailEncryptLogs")
    assert ct["Principal"] == {"Service": ["cloudtrail.amazonaws.com"]}
    assert ct["Condition"]["StringEquals"]["aws:SourceArn"] == [trail_arn]
    submitter_arns = set(iam.output("submitter_role_arns").values())
    for s in pol["Statement"]:
        granted = set(s.get("Condition", {}).get("ArnEquals", {}).get("aws:PrincipalArn", []))
        assert not granted & submitter_arns


@pytest.mark.parametrize("key", ["phi", "audit"])
def test_keys_rotate(env, key):
    k = env.child("kms").instances("resource", "aws_kms_key", key)
    assert k.arg("enable_key_rotation") is True
    assert k.arg("deletion_window_in_days") >= 7
