"""Buckets, bucket policies, the ledger's Object Lock, CloudTrail, network and MWAA/EMR settings,
checked on the evaluated configuration of each tfvars file."""

from __future__ import annotations

import ipaddress
import json

import pytest
from tf_eval import Instance, Module, decide, load_env
from tf_layout import ENV_DIR

PHI_ZONES = ["landing", "lakehouse", "outbox", "publish"]
KMS_ZONES = PHI_ZONES + ["ledger", "artifacts"]
ANYONE = {"AWS": "arn:aws:iam::210987654321:role/someone"}


def _bucket_module(env: Module, zone: str) -> Module:
    return env.child("storage").child(zone)


def _res(mod: Module, rtype: str, name: str = "this") -> Instance:
    return mod.instances("resource", rtype, name)


def _policy(env: Module, zone: str) -> dict:
    if zone == "logs":
        inst = _res(env.child("storage"), "aws_s3_bucket_policy", "logs")
    else:
        inst = _res(_bucket_module(env, zone), "aws_s3_bucket_policy")
    return json.loads(inst.arg("policy"))


def _all_buckets(env: Module) -> list[Instance]:
    out = []
    for mod in env.walk():
        out.extend(mod.all_instances("aws_s3_bucket"))
    return out


def test_seven_buckets_with_expected_names(env):
    names = env.child("storage").output("bucket_names")
    assert set(names) == set(KMS_ZONES) | {"logs"}
    prefix, account = env.local("name_prefix"), env.facts["account_id"]
    for zone, name in names.items():
        assert name == f"{prefix}-{zone}-{account}"
        assert 3 <= len(name) <= 63 and name == name.lower()
    assert sorted(b.get("bucket") for b in _all_buckets(env)) == sorted(names.values())


def test_public_access_blocked_and_acls_disabled_on_every_bucket(env):
    buckets = {b.get("id") for b in _all_buckets(env)}
    pab, owner = {}, {}
    for mod in env.walk():
        for inst in mod.all_instances("aws_s3_bucket_public_access_block"):
            pab[inst.arg("bucket")] = inst
        for inst in mod.all_instances("aws_s3_bucket_ownership_controls"):
            owner[inst.arg("bucket")] = inst
    assert set(pab) == buckets and set(owner) == buckets
    for bucket, inst in pab.items():
        for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            assert inst.arg(flag) is True, (bucket, flag)
        assert owner[bucket].nested("rule") == [{"object_ownership": "BucketOwnerEnforced"}]


def test_every_bucket_is_versioned_logged_and_has_lifecycle(env):
    logs_bucket = env.child("storage").output("bucket_names")["logs"]
    for zone in KMS_ZONES:
        mod = _bucket_module(env, zone)
        assert _res(mod, "aws_s3_bucket_versioning").nested("versioning_configuration") == [{"status": "Enabled"}]
        logging = _res(mod, "aws_s3_bucket_logging")
        assert logging.arg("target_bucket") == logs_bucket
        assert logging.arg("target_prefix") == f"s3-access/{zone}/"
        (rule,) = _res(mod, "aws_s3_bucket_lifecycle_configuration").nested("rule")
        assert rule["status"] == "Enabled"
        assert rule["abort_incomplete_multipart_upload"][0]["days_after_initiation"] >= 1
        assert rule["noncurrent_version_expiration"][0]["noncurrent_days"] >= 1
    storage = env.child("storage")
    assert _res(storage, "aws_s3_bucket_versioning", "logs").nested("versioning_configuration") == [
        {"status": "Enabled"}]
    (rule,) = _res(storage, "aws_s3_bucket_lifecycle_configuration", "logs").nested("rule")
    assert rule["expiration"][0]["days"] == env.var("log_retention_days")


@pytest.mark.parametrize("zone", KMS_ZONES)
def test_default_encryption_is_sse_kms_with_the_right_key_and_bucket_key(env, zone):
    kms = env.child("kms")
    expected = kms.output("audit_key_arn") if zone == "ledger" else kms.output("phi_key_arn")
    (rule,) = _res(_bucket_module(env, zone), "aws_s3_bucket_server_side_encryption_configuration").nested("rule")
    assert rule["apply_server_side_encryption_by_default"] == [
        {"sse_algorithm": "aws:kms", "kms_master_key_id": expected}]
    assert rule["bucket_key_enabled"] is True


@pytest.mark.parametrize("zone", KMS_ZONES + ["logs"])
def test_bucket_policy_denies_requests_without_tls(env, zone):
    arn = env.child("storage").output("bucket_arns")[zone]
    pol = [_policy(env, zone)]
    for action, resource in (("s3:GetObject", f"{arn}/k"), ("s3:PutObject", f"{arn}/k"), ("s3:ListBucket", arn)):
        assert decide(pol, action, resource, {"aws:SecureTransport": "false"}, ANYONE) == "Deny"
        assert decide(pol, action, resource, {"aws:SecureTransport": "true", "s3:TlsVersion": "1.1"}, ANYONE) == "Deny"
        assert decide(pol, action, resource, {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}, ANYONE) != "Deny"


@pytest.mark.parametrize("zone", KMS_ZONES)
def test_bucket_policy_denies_puts_not_using_the_bucket_key(env, zone):
    kms = env.child("kms")
    key = kms.output("audit_key_arn") if zone == "ledger" else kms.output("phi_key_arn")
    other_key = kms.output("phi_key_arn") if zone == "ledger" else kms.output("audit_key_arn")
    obj = f"{env.child('storage').output('bucket_arns')[zone]}/x/y.parquet"
    pol = [_policy(env, zone)]
    tls = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
    sse = "s3:x-amz-server-side-encryption"
    kid = "s3:x-amz-server-side-encryption-aws-kms-key-id"
    assert decide(pol, "s3:PutObject", obj, {**tls, sse: "AES256"}, ANYONE) == "Deny"
    assert decide(pol, "s3:PutObject", obj, {**tls, sse: "aws:kms:dsse", kid: key}, ANYONE) == "Deny"
    assert decide(pol, "s3:PutObject", obj, {**tls, sse: "aws:kms", kid: other_key}, ANYONE) == "Deny"
    assert decide(pol, "s3:PutObject", obj, {**tls, sse: "aws:kms", kid: "arn:aws:kms:us-east-1:1:key/x"},
                  ANYONE) == "Deny"
    assert decide(pol, "s3:PutObject", obj,
                  {**tls, "s3:x-amz-server-side-encryption-customer-algorithm": "AES256"}, ANYONE) == "Deny"
    assert decide(pol, "s3:PutObject", obj, {**tls, sse: "aws:kms", kid: key}, ANYONE) != "Deny"
    # no header: the default (SSE-KMS, this key) applies; multipart UploadPart requests look like this
    assert decide(pol, "s3:PutObject", obj, tls, ANYONE) != "Deny"


def test_bucket_policies_grant_nothing_to_everyone(env):
    for zone in KMS_ZONES + ["logs"]:
        for st in _policy(env, zone)["Statement"]:
            if st["Effect"] == "Allow":
                assert "*" not in st["Principal"] and st["Principal"].get("AWS") != ["*"], (zone, st)
                assert set(st["Principal"]) == {"Service"}, (zone, st)
                assert "Condition" in st, (zone, st)


def test_log_bucket_refuses_deletes_and_accepts_only_aws_log_delivery(env):
    arn = env.child("storage").output("bucket_arns")["logs"]
    pol = [_policy(env, "logs")]
    tls = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
    for action in ("s3:DeleteObject", "s3:DeleteObjectVersion"):
        assert decide(pol, action, f"{arn}/cloudtrail/AWSLogs/x", tls, ANYONE) == "Deny"
    acct = env.facts["account_id"]
    trail_arn = env.child("cloudtrail").output("arn")
    ct = {"Service": "cloudtrail.amazonaws.com"}
    ok = {**tls, "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}
    assert decide(pol, "s3:PutObject", f"{arn}/cloudtrail/AWSLogs/{acct}/CloudTrail/x.json.gz", ok, ct) == "Allow"
    assert decide(pol, "s3:PutObject", f"{arn}/cloudtrail/AWSLogs/{acct}/x", {**ok, "aws:SourceArn": "arn:other"},
                  ct) != "Allow"
    assert decide(pol, "s3:PutObject", f"{arn}/s3-access/landing/x", ok, ct) != "Allow"
    s3log = {"Service": "logging.s3.amazonaws.com"}
    landing = env.child("storage").output("bucket_arns")["landing"]
    assert decide(pol, "s3:PutObject", f"{arn}/s3-access/landing/x",
                  {**tls, "aws:SourceAccount": acct, "aws:SourceArn": landing}, s3log) == "Allow"
    assert decide(pol, "s3:PutObject", f"{arn}/s3-access/landing/x",
                  {**tls, "aws:SourceAccount": "999999999999", "aws:SourceArn": landing}, s3log) != "Allow"


def test_ledger_has_object_lock_in_compliance_mode(env):
    mod = _bucket_module(env, "ledger")
    assert _res(mod, "aws_s3_bucket").arg("object_lock_enabled") is True
    (lock,) = _res(mod, "aws_s3_bucket_object_lock_configuration")
    assert lock.arg("bucket") == env.child("storage").output("bucket_names")["ledger"]
    (rule,) = lock.nested("rule")
    (retention,) = rule["default_retention"]
    assert retention == {"mode": "COMPLIANCE", "days": env.var("ledger_retention_days")}
    assert _res(mod, "aws_s3_bucket").arg("force_destroy") is False
    # noncurrent ledger versions are not expired before their retention ends
    (lc,) = _res(mod, "aws_s3_bucket_lifecycle_configuration").nested("rule")
    assert lc["noncurrent_version_expiration"][0]["noncurrent_days"] > retention["days"]


def test_only_the_ledger_has_object_lock(env):
    for zone in KMS_ZONES:
        mod = _bucket_module(env, zone)
        locks = _res(mod, "aws_s3_bucket_object_lock_configuration")
        assert (len(locks) == 1) == (zone == "ledger")
        assert _res(mod, "aws_s3_bucket").arg("object_lock_enabled") is (zone == "ledger")


def test_prod_keeps_the_ledger_at_least_six_years():
    prod = load_env(ENV_DIR, ENV_DIR / "prod.tfvars")
    assert prod.var("environment") == "prod"
    assert prod.var("ledger_retention_days") >= 6 * 365  # HIPAA documentation retention
    assert prod.var("force_destroy") is False
    assert prod.var("landing_expiration_days") is None


# ---------------------------------------------------------------- CloudTrail
def test_cloudtrail_records_data_events_on_every_phi_bucket(env):
    ct = _res(env.child("cloudtrail"), "aws_cloudtrail")
    arns = env.child("storage").output("bucket_arns")
    assert ct.arg("enable_log_file_validation") is True
    assert ct.arg("is_multi_region_trail") is True
    assert ct.arg("kms_key_id") == env.child("kms").output("audit_key_arn")
    assert ct.arg("s3_bucket_name") == env.child("storage").output("bucket_names")["logs"]
    (sel,) = ct.nested("event_selector")
    assert sel["read_write_type"] == "All" and sel["include_management_events"] is True
    (dr,) = sel["data_resource"]
    assert dr["type"] == "AWS::S3::Object"
    assert set(dr["values"]) == {f"{arns[z]}/" for z in PHI_ZONES + ["ledger"]}
    assert ct.arg("name") == env.local("trail_name")


# ---------------------------------------------------------------- network
def _cidrs_of_rules(env: Module) -> list[tuple[str, str]]:
    out = []
    for mod in env.walk():
        for rtype in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"):
            for rule in mod.all_instances(rtype):
                for attr in ("cidr_ipv4", "cidr_ipv6"):
                    val = rule.arg(attr)
                    if val is not None:
                        out.append((f"{mod.path}.{rule.address}", val))
        assert not mod.all_instances("aws_security_group_rule"), "use the per-rule resources"
        for sg in mod.all_instances("aws_security_group"):
            assert not sg.block.all("ingress") and not sg.block.all("egress"), sg.address
    return out


def test_no_security_group_rule_opens_the_internet(env):
    rules = _cidrs_of_rules(env)
    assert rules, "expected some CIDR-based rules"
    vpc = ipaddress.ip_network(env.var("vpc_cidr"))
    for where, cidr in rules:
        net = ipaddress.ip_network(cidr)
        assert net.prefixlen >= 8, f"{where} opens {cidr}"
        assert net.is_private, f"{where} allows a public range {cidr}"
        assert net.subnet_of(vpc) or cidr in env.var("ui_access_cidrs"), f"{where}: {cidr}"


def test_no_route_to_the_internet(env):
    for mod in env.walk():
        for rtype in ("aws_internet_gateway", "aws_nat_gateway", "aws_egress_only_internet_gateway", "aws_eip"):
            assert not any(t == rtype for t, _ in mod.resources), (mod.path, rtype)
        for route in mod.all_instances("aws_route"):
            pytest.fail(f"unexpected route {route.address}")
        for subnet in mod.all_instances("aws_subnet"):
            assert subnet.arg("map_public_ip_on_launch") is False


def test_vpc_endpoints_keep_aws_traffic_private(env):
    net = env.child("network")
    s3 = _res(net, "aws_vpc_endpoint", "s3")
    region = env.facts["region"]
    assert s3.arg("service_name") == f"com.amazonaws.{region}.s3" and s3.arg("vpc_endpoint_type") == "Gateway"
    iface = net.instances("resource", "aws_vpc_endpoint", "interface")
    assert set(iface) >= {"kms", "sts", "logs", "emr-serverless", "sqs", "airflow.env"}
    for name, ep in iface.items():
        assert ep.arg("service_name") == f"com.amazonaws.{region}.{name}"
        assert ep.arg("vpc_endpoint_type") == "Interface" and ep.arg("private_dns_enabled") is True
    assert _res(net, "aws_flow_log").arg("log_destination").startswith(
        env.child("storage").output("bucket_arns")["logs"] + "/vpc-flow-logs/")
    default_sg = _res(net, "aws_default_security_group")
    assert not default_sg.block.all("ingress") and not default_sg.block.all("egress")


# ---------------------------------------------------------------- MWAA, EMR, settings
def test_mwaa_is_private_encrypted_and_logs_everything(env):
    mwaa = env.child("mwaa")
    m = _res(mwaa, "aws_mwaa_environment")
    assert m.arg("webserver_access_mode") == "PRIVATE_ONLY"
    assert m.arg("kms_key") == env.child("kms").output("phi_key_arn")
    assert m.arg("execution_role_arn") == env.child("iam").output("pipeline_airflow_role_arn")
    assert m.arg("source_bucket_arn") == env.child("storage").output("bucket_arns")["artifacts"]
    (logging,) = m.nested("logging_configuration")
    for kind in ("dag_processing_logs", "scheduler_logs", "task_logs", "webserver_logs", "worker_logs"):
        assert logging[kind][0]["enabled"] is True, kind
    (net,) = m.nested("network_configuration")
    assert len(net["subnet_ids"]) == 2
    script = _res(mwaa, "aws_s3_object", "startup_script").arg("content")
    for k, v in env.output("phmx_settings").items():
        assert f"export {k}='{v}'" in script


def test_emr_serverless_runs_spark_with_delta_in_private_subnets(env):
    emr = env.child("emr")
    app = _res(emr, "aws_emrserverless_application")
    assert app.arg("type") == "spark"
    assert app.arg("release_label").startswith("emr-7.")
    (net,) = app.nested("network_configuration")
    assert net["subnet_ids"] == env.child("network").output("private_subnet_ids")
    params = emr.output("spark_submit_parameters")
    assert "/usr/share/aws/delta/lib/delta-spark.jar" in params
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in params
    assert "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog" in params


def test_outputs_feed_every_phmx_setting(env):
    settings = env.output("phmx_settings")
    names = env.child("storage").output("bucket_names")
    assert settings == {
        "PHMX_LANDING_ROOT": f"s3://{names['landing']}",
        "PHMX_LAKEHOUSE_ROOT": f"s3://{names['lakehouse']}",
        "PHMX_OUTBOX_ROOT": f"s3://{names['outbox']}",
        "PHMX_PUBLISH_ROOT": f"s3://{names['publish']}",
        "PHMX_LEDGER_ROOT": f"s3://{names['ledger']}/ledger",
        "PHMX_KMS_KEY_ID": env.child("kms").output("phi_key_arn"),
        "PHMX_RUNNER": "emr_serverless",
        "PHMX_EMR_APPLICATION_ID": env.child("emr").output("application_id"),
        "PHMX_EMR_EXECUTION_ROLE_ARN": env.child("iam").output("pipeline_spark_role_arn"),
        "PHMX_EMR_CODE_URI": env.child("emr").output("code_uri"),
        "PHMX_EMR_LOG_URI": env.child("emr").output("log_uri"),
        "PHMX_KEYS_DIR": f"s3://{names['artifacts']}/keys",
        "PHMX_LEDGER_KMS_KEY_ID": env.child("kms").output("audit_key_arn"),
    }
    assert settings["PHMX_KMS_KEY_ID"].startswith(f"arn:aws:kms:{env.facts['region']}:{env.facts['account_id']}:key/")
    for name in env.outputs:
        env.output(name)  # every output of the environment evaluates
