# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module base of this collection: amazon.aws's AnsibleAWSModule with our user agent and a client factory."""

from __future__ import annotations

import os
import threading

try:
    import boto3.session
    import botocore.config
    import botocore.exceptions
    import botocore.session
except ImportError:
    pass  # AnsibleAWSModule reports the missing SDK

from ansible.module_utils.ansible_release import __version__ as ANSIBLE_VERSION

from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info
from ansible_collections.amazon.aws.plugins.module_utils.common import set_collection_info
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper

from ansible_collections.mattermost.byok.plugins.module_utils.aws.version import COLLECTION_NAME
from ansible_collections.mattermost.byok.plugins.module_utils.aws.version import COLLECTION_VERSION

# One retry policy for every call of every client, paginators and waiters included: botocore's standard mode
# (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html) retries throttling errors (Throttling,
# ThrottlingException, SlowDown, RequestLimitExceeded, ...), transient errors (HTTP 500/502/503/504, dropped
# connections, timeouts) with jittered exponential backoff up to 20 s a wait. Ten attempts in all: at 10 % throttled
# a call fails only if ten draws in a row are throttled. A module's aws_config option can still override it.
RETRY_POLICY = {"mode": "standard", "total_max_attempts": 10}


def _no_extra_retry(function):
    """The retry decorator of byok_client: the calls' aws_retry=True is kept but adds nothing to the client's policy
    (AWSRetry on top would multiply the attempts, and would skip paginators and waiters)."""
    return function


_PROCESS_SESSION = []
_SESSION_LOCK = threading.Lock()  # a boto3 session is not thread-safe; the clients it makes are


def process_session():
    """The boto3 session of this process, for every client that names no profile.

    amazon.aws starts a session per client: botocore registers its few hundred event handlers again each time, about
    20 ms of CPU per client and a fleet run makes several clients per customer. Credentials are given to each client,
    so clients of different customers share nothing but the handlers. When modules run in Ansible's worker processes
    (plugins/plugin_utils/module_in_worker.py) and the run opted in with the mattermost.byok.prepare_workers callback,
    the session is made in the main process before the workers fork, and inherited by them.
    """
    if not _PROCESS_SESSION:
        core = botocore.session.get_session()
        _PROCESS_SESSION.extend([boto3.session.Session(botocore_session=core), core])
    return _PROCESS_SESSION[0]


def load_service_models(services) -> int:
    """Parse the models of these services into the process session's data loader, once; returns how many were loaded.

    Every client the session makes afterwards finds them parsed (botocore caches them per loader), and processes
    forked afterwards inherit them: about half a CPU-second per module run otherwise. Public botocore API only
    (`Session.get_component('data_loader')`), so sessions other than this one are untouched.
    """
    process_session()
    _PROCESS_SESSION[1].get_component("endpoint_resolver")
    loader = _PROCESS_SESSION[1].get_component("data_loader")
    loaded = 0
    for service in services:
        for kind in ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"):
            try:
                loader.load_service_model(service, kind)
                loaded += 1
            except botocore.exceptions.DataNotFoundError:
                pass  # not every service has waiters or paginators
    return loaded


class ByokModule(AnsibleAWSModule):
    """AnsibleAWSModule whose calls carry `mattermost.byok/<version>` in the user agent."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        set_collection_info(collection_name=COLLECTION_NAME, collection_version=COLLECTION_VERSION)

    def client_cache(self, max_pool_connections: int = 10, make=None):
        """`client(service, region, ...)`: one client per distinct arguments, made on first use from any thread (boto3
        clients are thread-safe, their creation is not). `make` makes one from the same arguments; by default
        byok_client with a pool of `max_pool_connections`."""
        make = make or (lambda service, region: self.byok_client(service, region=region, max_pool_connections=max_pool_connections))
        clients, lock = {}, threading.Lock()

        def client(*args):
            with lock:
                if args not in clients:
                    clients[args] = make(*args)
                return clients[args]

        return client

    def require_config(self, config: dict, keys) -> None:
        """Fails naming the keys a customer config lacks (it comes from mattermost.byok.customer_config)."""
        missing = [k for k in keys if k not in config]
        if missing:
            self.fail_json(msg=f"config: missing {', '.join(missing)}; pass the config returned by mattermost.byok.customer_config")

    def byok_client(self, service: str, region: str | None = None, max_pool_connections: int = 10):
        """A client with the collection's retry policy (RETRY_POLICY) on every call; aws_retry=True is accepted.

        `region` overrides the module's region, for resources of one customer that live in several regions.
        The connection pool is sized for the thread pools that fan reads out inside one module call.
        """
        extra = {"config": botocore.config.Config(max_pool_connections=max_pool_connections)}
        if region:
            extra["region"] = region
        return self.client(service, retry_decorator=_no_extra_retry, **extra)

    def client(self, service: str, retry_decorator=None, **extra_params):
        """AnsibleAWSModule.client, made from this process's session unless a profile (or a recording) is asked for.

        Every client gets RETRY_POLICY, whichever way it is made.
        """
        region, endpoint_url, params = get_aws_connection_info(self)
        extra = extra_params.get("config") or botocore.config.Config()
        extra = extra if isinstance(extra, botocore.config.Config) else botocore.config.Config(**extra)
        extra_params = {**extra_params, "config": botocore.config.Config(retries=dict(RETRY_POLICY)).merge(extra)}
        params.update(extra_params)
        region = params.pop("region", region)
        if params.get("profile_name") or any(k in os.environ for k in ("_ANSIBLE_PLACEBO_RECORD", "_ANSIBLE_PLACEBO_REPLAY")):
            return super().client(service, retry_decorator=retry_decorator, **extra_params)
        params.pop("profile_name", None)
        config = botocore.config.Config(user_agent=f"APN/1.0 Ansible/{ANSIBLE_VERSION} {COLLECTION_NAME}/{COLLECTION_VERSION}")
        for name in ("config", "aws_config"):
            extra = params.pop(name, None)
            if extra:
                config = config.merge(extra if isinstance(extra, botocore.config.Config) else botocore.config.Config(**extra))
        try:
            with _SESSION_LOCK:
                conn = process_session().client(service, config=config, region_name=region, endpoint_url=endpoint_url, **params)
        except botocore.exceptions.NoRegionError:
            self.fail_json(msg=f"The {self._name} module requires a region and none was found in configuration, "
                               "environment variables or module parameters")
        except (ValueError, botocore.exceptions.BotoCoreError) as e:
            self.fail_json_aws(e, msg="Couldn't connect to AWS")
        return conn if retry_decorator is None else RetryingBotoClientWrapper(conn, retry_decorator)
