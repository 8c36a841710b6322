# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# Apache License 2.0 (see LICENSE)
"""The collection's identity, sent in the user agent so CloudTrail shows who made each call."""

from __future__ import annotations

COLLECTION_NAME = "mattermost.byok"
COLLECTION_VERSION = "0.1.0"
