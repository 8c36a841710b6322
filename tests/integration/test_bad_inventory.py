# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad inventory input fails that customer, naming the variable, before any AWS call; the others go on."""

from __future__ import annotations

import os
import re
import socket

from tests.integration import runner


def dead_endpoint() -> str:
    """An address where nothing listens: a customer that reaches AWS fails with a connection error."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_bad_customers_fail_with_the_field_named_and_others_go_on(tmp_path):
    good = runner.demo_host_vars("acme")
    good.pop("byok_mattermost_installations", None)  # acme's installation writes acme's bucket only
    no_account = dict(good)
    del no_account["byok_customer_account_id"]
    bad_arn = dict(good, byok_keys={"all": "arn:aws:kms:us-east-1:111111111101:key/not-a-key"})
    bad_alias = dict(good, byok_keys={"all": "alias/customer-key"})
    bad_service = dict(good, byok_services=["s3", "efs"])
    inventory = runner.write_inventory(str(tmp_path / "inv"), {
        "good": good, "noaccount": no_account, "badarn": bad_arn, "badalias": bad_alias, "badservice": bad_service})
    proc = runner.run_playbook(dead_endpoint(), inventory, str(tmp_path / "artifacts"))
    assert proc.returncode != 0
    fleet = {c["customer"]: c["outcome"] for c in runner.read_json(str(tmp_path / "artifacts" / "fleet-summary.json"))["customers"]}
    assert set(fleet) == {"good", "noaccount", "badarn", "badalias", "badservice"}
    assert all(o["status"] == "failed" for o in fleet.values())
    assert "byok_customer_account_id" in fleet["noaccount"]["message"]
    assert "byok_keys.all" in fleet["badarn"]["message"] and "not a KMS key ARN" in fleet["badarn"]["message"]
    assert "byok_keys.all" in fleet["badalias"]["message"] and "alias" in fleet["badalias"]["message"]
    assert "byok_services" in fleet["badservice"]["message"] and "efs" in fleet["badservice"]["message"]
    # The bad ones stopped at validation; only the good one got as far as calling AWS (which isn't there): assuming
    # the automation role, in the same task (byok_config's one task validates first, then assumes the role).
    step = "Validate the customer's variables and assume the automation role in the provider account"
    for name in ("noaccount", "badarn", "badalias", "badservice"):
        assert fleet[name]["step"].endswith(step), fleet[name]
        assert "Cannot assume" not in fleet[name]["message"] and "connect" not in fleet[name]["message"].lower()
    assert fleet["good"]["step"].endswith(step), fleet["good"]
    assert "Cannot assume" in fleet["good"]["message"], fleet["good"]
    summary = open(os.path.join(tmp_path, "artifacts", "fleet-summary.md")).read()
    # A failed customer's row names what is wrong, not the task that stopped it.
    assert "| badarn | failed: " in summary and "not a KMS key ARN" in summary


def test_a_bad_role_argument_stops_that_customer_first_and_no_credential_is_printed(local_aws, tmp_path):
    """byok_config's one task checks every role's arguments before the customer's variables and any AWS call; the
    automation role's session credentials are kept as facts, never printed (the task has no no_log to hide them)."""
    good = runner.demo_host_vars("acme")
    bad_argument = dict(good, byok_s3_concurrency="many", byok_rds_strategy="sideways")
    inventory = runner.write_inventory(str(tmp_path / "inv"), {"good": good, "badargument": bad_argument})
    # Only the always-tagged tasks: the configuration step, the outcome and the fleet summary.
    proc = runner.run_playbook(local_aws.endpoint_url, inventory, str(tmp_path / "artifacts"), "-vv",
                               "--skip-tags", "key_check,s3,rds,ebs,cleanup,audit")
    fleet = {c["customer"]: c["outcome"] for c in runner.read_json(str(tmp_path / "artifacts" / "fleet-summary.json"))["customers"]}
    assert fleet["good"]["status"] == "ok", fleet["good"]
    bad = fleet["badargument"]
    assert bad["status"] == "failed" and bad["message"].startswith("Validation of arguments failed"), bad
    assert "byok_s3_concurrency" in bad["message"] and "byok_rds_strategy" in bad["message"], bad
    assert "Cannot assume" not in bad["message"]
    # The good customer assumed the role (its message says so) and its keys appear nowhere in the output.
    assert "good: s3, rds, ebs in this run" in proc.stdout, proc.stdout[-3000:]
    assert "session_token" not in proc.stdout and "secret_key" not in proc.stdout
    assert not re.search(r"\bASIA[A-Z0-9]{12,}", proc.stdout), "an access key id of the assumed role was printed"
