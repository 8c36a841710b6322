# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the audit step (mattermost.byok.audit_step) decides and writes, without touching AWS.

Whether the Mattermost servers must be read again, the per-bucket cutoffs the S3 step left, the customer's JSON report
(customers/<customer>.json) and the line that says where the customer stands. The report has no timestamp or timing:
an audit that finds the same state writes the same bytes (write_report then says changed=false).
"""

from __future__ import annotations

import json


def server_read_needed(services, findings):
    """The servers are read only for a customer with S3 whose S3 step left no findings (not run, skipped, failed,
    or --tags audit on its own). An empty list of findings is a reading: nothing to read again."""
    return "s3" in (services or []) and findings is None


def s3_cutoffs(latest):
    """{bucket: cutoff} from byok_s3_latest ({bucket: {complete, cutoff, ...}}); a bucket without one maps to None
    (encryption_audit_info then takes it from the checkpoint)."""
    return {bucket: (record.get("cutoff") if isinstance(record, dict) else None) for bucket, record in (latest or {}).items()}


def customer_report(customer, config, audit):
    """The customer's report, keys in this order."""
    return {
        "customer": customer,
        "services": config.get("services"),
        "service_keys": config.get("service_keys"),
        "rds_region_keys": config.get("rds_region_keys"),
        "summary": audit.get("summary"),
        "resources": audit.get("resources"),
        "copies": audit.get("copies") or [],
    }


def report_text(report):
    """The report file's bytes as text: to_nice_json(sort_keys=false) and a final newline."""
    return json.dumps(report, indent=4, sort_keys=False, separators=(",", ": ")) + "\n"


def standing_line(customer, summary):
    """Where the customer stands: resources on its key, compliant or not, and what revocation would leave readable."""
    compliant = " - compliant" if summary.get("compliant") else ""
    if summary.get("revocable"):
        revocation = "revocable: nothing of the customer stays readable without the key"
    else:
        revocation = f"{summary.get('readable_count', '?')} store(s) or copies would stay readable after revocation"
    return (f"{customer}: {summary.get('on_customer_key')} of {summary.get('in_scope')} resources on the customer's key"
            f"{compliant}; {revocation}")


def noncompliant_failure(customer, summary, fail_on_noncompliant, artifacts_dir):
    """The failure message when the customer must fail for resources off its key (byok_audit_fail_on_noncompliant),
    else None."""
    if summary.get("compliant") or not fail_on_noncompliant:
        return None
    return (f"{summary.get('not_on_customer_key')} resource(s) of {customer} are not on the customer's key; "
            f"see {artifacts_dir}/customers/{customer}.json")
