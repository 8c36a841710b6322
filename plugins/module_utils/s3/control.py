# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The s3control client (S3 Batch Operations), also against an endpoint given as an IP address or localhost.

S3 Control puts the account id in front of the host name (`<account>.s3-control.<region>.amazonaws.com`), and botocore
does the same to a custom endpoint, giving `<account>.127.0.0.1`, which no resolver answers. For such an endpoint the
prefix is taken off again before the request is signed (the account stays in the `x-amz-account-id` header, which S3
Control reads). AWS endpoints are left as they are.
"""

from __future__ import annotations

import ipaddress
import urllib.parse


def _unresolvable(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def strip_account_prefix(url: str, account_id: str | None) -> str:
    """The URL without `<account>.` in front of an IP address or localhost; any other URL unchanged."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if not account_id or not host.startswith(f"{account_id}."):
        return url
    bare = host[len(account_id) + 1:]
    if not _unresolvable(bare):
        return url
    netloc = parts.netloc.replace(host, bare, 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _before_sign(request, **kwargs):  # pylint: disable=unused-argument
    request.url = strip_account_prefix(request.url, request.headers.get("x-amz-account-id", b"").decode()
                                       if isinstance(request.headers.get("x-amz-account-id"), bytes)
                                       else request.headers.get("x-amz-account-id"))


def s3control_client(module):
    client = module.byok_client("s3control")
    client.meta.events.register("before-sign.s3-control", _before_sign)
    return client
