# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The external key path through the fleet playbook: material handed over, imported, checked, audited.

The key check and the audit only (the S3/RDS/EBS steps on an imported key: extensions/molecule/external_key)."""

from __future__ import annotations

import base64
import os

from tests.integration import runner
from tests.integration.test_audit import client

PROVIDER = "222222222222"
KEY_AND_AUDIT = ("--tags", "key_check,audit")
KEY = f"arn:aws:kms:us-east-1:{PROVIDER}:key/0e0e0000-0000-4000-8000-000000000070"


def test_external_key_is_imported_then_passes_the_check(local_aws, tmp_path):
    endpoint = local_aws.endpoint_url
    hv = runner.demo_host_vars("acme")
    hv.pop("byok_mattermost_installations", None)  # acme's installation writes acme's bucket, not this customer's
    hv.update({
        "byok_customer_account_id": "111111111170", "byok_vpc_id": "vpc-0e0e0000000000070", "byok_kops_cluster_id": "extco01",
        "byok_key_source": "external", "byok_keys": {"all": KEY}, "byok_services": ["s3", "rds"],
        "byok_s3_buckets": ["mattermost-extco-filestore"], "byok_rds_clusters": [{"identifier": "extco-db", "region": "us-east-1"}],
    })
    inventory = runner.write_inventory(str(tmp_path / "inventory"), {"extco": hv})
    runner.seed(endpoint, os.path.dirname(inventory))
    kms = client(endpoint, "kms")
    assert kms.describe_key(KeyId=KEY)["KeyMetadata"]["KeyState"] == "PendingImport"

    # Without the material the key is not ready: the customer stops at the key check, with the reason.
    first = runner.run_playbook(endpoint, inventory, str(tmp_path / "a1"), *KEY_AND_AUDIT)
    assert first.returncode == 2, first.stdout[-3000:]
    [check] = runner.read_json(str(tmp_path / "a1" / "key-checks" / "extco.json"))
    assert [f["code"] for f in check["findings"] if f["severity"] == "error"] == ["KEY_PENDING_IMPORT"]

    material = base64.b64encode(os.urandom(32)).decode()
    second = runner.run_playbook(endpoint, inventory, str(tmp_path / "a2"), "-e", f"byok_key_material={material}", *KEY_AND_AUDIT)
    assert second.returncode == 0, second.stdout[-3000:]
    meta = kms.describe_key(KeyId=KEY)["KeyMetadata"]
    assert (meta["KeyState"], meta["Origin"], meta["ExpirationModel"]) == ("Enabled", "EXTERNAL", "KEY_MATERIAL_EXPIRES")
    [check] = runner.read_json(str(tmp_path / "a2" / "key-checks" / "extco.json"))
    assert check["passed"] and check["key"]["origin"] == "EXTERNAL" and check["policy_source"] == "aws"
    assert material not in second.stdout + second.stderr
    fleet = runner.read_json(str(tmp_path / "a2" / "fleet-summary.json"))
    assert [c["outcome"]["status"] for c in fleet["customers"]] == ["ok"]

    # Material imported and far from expiry: a run without it passes as it is.
    third = runner.run_playbook(endpoint, inventory, str(tmp_path / "a3"), *KEY_AND_AUDIT)
    assert third.returncode == 0, third.stdout[-3000:]
