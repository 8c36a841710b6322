# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's identity, sent in the user agent so CloudTrail shows who made each call."""

from __future__ import annotations

COLLECTION_NAME = "mattermost.byok"
COLLECTION_VERSION = "0.1.0"
