# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS errors as findings and report records show them: the code, and the code with AWS's message."""

from __future__ import annotations

try:
    from botocore.exceptions import ClientError
except ImportError:
    ClientError = None  # the modules report the missing SDK


# Kept beside amazon.aws's is_boto3_error_code (used where a module's AWS code picks an except clause by code, e.g.
# s3_bucket_kms): that lives in amazon.aws's botocore module, which loads ansible.module_utils.basic (1.4 s here), and
# these serve pure logic importable without Ansible, turning an error caught anyway into a finding's or report's text.
def error_code(e) -> str:
    if ClientError is not None and isinstance(e, ClientError):
        return e.response.get("Error", {}).get("Code", "ClientError")
    return type(e).__name__


def error_text(e) -> str:
    if ClientError is not None and isinstance(e, ClientError):
        err = e.response.get("Error", {})
        return f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}".strip()
    return f"{type(e).__name__}: {e}"
