# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module base of this collection: amazon.aws's AnsibleAWSModule with our user agent and a client factory."""

from __future__ import annotations

try:
    import botocore.config
except ImportError:
    pass  # AnsibleAWSModule reports the missing SDK

from ansible_collections.amazon.aws.plugins.module_utils.common import set_collection_info
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.mattermost.byok.plugins.module_utils.version import COLLECTION_NAME
from ansible_collections.mattermost.byok.plugins.module_utils.version import COLLECTION_VERSION

# Calls that hit API rate limits are retried with jitter; moves of a whole fleet run many calls at once.
DEFAULT_RETRY = dict(retries=10, delay=1, max_delay=30)


class ByokModule(AnsibleAWSModule):
    """AnsibleAWSModule whose calls carry `mattermost.byok/<version>` in the user agent."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        set_collection_info(collection_name=COLLECTION_NAME, collection_version=COLLECTION_VERSION)

    def byok_client(self, service: str, region: str | None = None, max_pool_connections: int = 10):
        """A client with jittered-backoff retries (opt in per call with aws_retry=True).

        `region` overrides the module's region, for resources of one customer that live in several regions.
        The connection pool is sized for the thread pools that fan reads out inside one module call.
        """
        extra = {"config": botocore.config.Config(max_pool_connections=max_pool_connections)}
        if region:
            extra["region"] = region
        return self.client(service, retry_decorator=AWSRetry.jittered_backoff(**DEFAULT_RETRY), **extra)
