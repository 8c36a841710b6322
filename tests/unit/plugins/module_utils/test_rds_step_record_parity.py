# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rds/step_record.py against the byok_rds role's Jinja it replaced, rendered by ansible-core's templar.

FORMER_JINJA is the role's vars/main.yml and tasks/calls.yml and tasks/main.yml expressions as they were (verbatim),
with the set_fact/include chain played here: the same rounds of answers give the same `databases` argument, the same
totals, the same pending databases, the same progress lines and the same records.
"""

from __future__ import annotations

import copy

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible.template import trust_as_template

from ansible_collections.mattermost.byok.plugins.module_utils.rds import step_record as sr
from tests.unit.plugins.module_utils.test_rds_step_record import ACME
from tests.unit.plugins.module_utils.test_rds_step_record import BG_PLAN
from tests.unit.plugins.module_utils.test_rds_step_record import SR_PLAN
from tests.unit.plugins.module_utils.test_rds_step_record import UMBRELLA
from tests.unit.plugins.module_utils.test_rds_step_record import answer

FORMER_JINJA = yaml.safe_load(r"""
__byok_rds_allowed: "{{ byok_disruption.allowed | default(byok_allow_disruption | default(false)) | bool }}"
__byok_rds_plan_only: "{{ not __byok_rds_allowed and byok_rds_strategy == 'snapshot_restore' and not byok_config_customer.rds_global_cluster }}"
__byok_rds_targets: >-
  {{ ([{'identifier': __byok_rds_primary.identifier, 'region': __byok_rds_primary.region, 'kind': 'cluster',
        'key_arn': __byok_rds_primary.key_arn, 'global_cluster': byok_config_customer.rds_global_cluster}]
      if byok_config_customer.rds_global_cluster else [])
     + (byok_config_customer.rds_clusters if not byok_config_customer.rds_global_cluster else []) }}
__byok_rds_primary: >-
  {{ byok_config_customer.rds_clusters | selectattr('region', 'equalto', byok_config_customer.region) | first
     | default(byok_config_customer.rds_clusters | first) }}
databases: "{{ _databases | from_yaml }}"
_databases: |-
  {% for t in byok_rds_pending | default(__byok_rds_targets) %}
  - {{ ({'identifier': t.identifier, 'kind': t.kind | default('cluster'), 'region': t.region}
        | combine({'global_cluster': t.global_cluster, 'region_keys': _region_keys} if t.global_cluster is defined
                  else {'key_arn': t.key_arn})) | to_json }}
  {% endfor %}
_region_keys: >-
  {{ dict(byok_config_customer.rds_clusters | map(attribute='region')
          | zip(byok_config_customer.rds_clusters | map(attribute='key_arn'))) }}
byok_rds_calls: "{{ byok_rds_calls | default(0) | int + 1 }}"
byok_rds_state: "{{ byok_rds_state | default({}) | combine(_round | from_yaml or {}) }}"
byok_rds_pending: >-
  {{ byok_rds_pending | default(__byok_rds_targets) | selectattr('identifier', 'in', byok_rds_call.results | rejectattr('complete') | rejectattr('deferred')
     | map(attribute='identifier') | list) | list }}
_deferred_plan: "{{ __byok_rds_plan_only | bool and not ansible_check_mode }}"
_round: |-
  {% for r in byok_rds_call.results %}
  {% set prev = (byok_rds_state | default({}))[r.identifier] | default({'seconds': 0, 'changed': false, 'measured': {}}) %}
  {% set measured = prev.measured | combine(r | dict2items | selectattr('key', 'in', ['downtime_seconds', 'switchover_seconds'])
                                            | rejectattr('value', 'none') | items2dict) %}
  {{ r.identifier | to_json }}: {{ {
    'seconds': prev.seconds | float + r.elapsed_seconds | default(0) | float,
    'changed': prev.changed or (r.changed | bool and not _deferred_plan | bool),
    'measured': measured,
    'last': r | dict2items | selectattr('key', 'in', ['step', 'status', 'complete', 'deferred', 'plan', 'strategy',
                                                      'retained_old', 'dr_exposure', 'prerequisites']) | items2dict} | to_json }}
  {% endfor %}
msg: "{{ _lines | from_yaml or [] }}"
_note_planning: "{{ ' (plan only)' if ansible_check_mode or __byok_rds_plan_only | bool else '' }}"
_lines: |-
  {% for r in byok_rds_call.results %}
  {% set s = byok_rds_state[r.identifier] %}
  {% set note = (' (deferred: the switchover waits for the maintenance window)' if r.deferred | default(false) else '') ~ _note_planning %}
  {% set resumed = r.resumed | default(none) %}
  {% set resumed_note = ('; resumed at ' ~ resumed.at_step ~ ' what an earlier run left ('
                         ~ (resumed.found | default(resumed.members_done | default([]))) | join(', ') ~ ')') if resumed else '' %}
  - {{ (r.identifier ~ ': step ' ~ r.step ~ ', status ' ~ (r.status | default('-', true)) ~ ', elapsed '
        ~ (s.seconds | float | round(1)) ~ ' s' ~ note ~ resumed_note) | to_json }}
  {% endfor %}
byok_step_results: "{{ byok_step_results | default([]) + (_records | from_yaml or []) }}"
_records: |-
  {% for target in __byok_rds_targets %}
  {% set s = (byok_rds_state | default({}))[target.identifier] | default({'changed': false, 'measured': {}, 'last': {}}) %}
  {% set r = s.last %}
  {% set m = s.measured %}
  {% set is_global = target.global_cluster is defined %}
  {% set deferred = (__byok_rds_plan_only | bool) or (r.deferred | default(false) | bool) %}
  {% if r.complete | default(false) %}
  {% set summary = 'on the customer key ('
     ~ (('each region on its own key; ' ~ (r.dr_exposure | default([]) | length) ~ ' DR exposure note(s)')
        if is_global else r.strategy | default(byok_rds_strategy))
     ~ ((', downtime ' ~ m.downtime_seconds ~ ' s') if m.downtime_seconds is defined else '')
     ~ ((', switchover ' ~ m.switchover_seconds ~ ' s') if m.switchover_seconds is defined else '')
     ~ '); old kept as ' ~ (r.retained_old | default('<id>-byok-old', true)) %}
  {% elif deferred %}
  {% set summary = 'deferred to the maintenance window at step ' ~ r.step | default('') ~ ' (' ~ (r.plan.expected_disruption | default('')) ~ ')' %}
  {% elif ansible_check_mode %}
  {% set summary = 'plan: ' ~ (r.plan.steps | default([]) | join(', ')) %}
  {% else %}
  {% set summary = 'not finished at step ' ~ r.step | default('') ~ '; resumes on the next run' %}
  {% endif %}
  {% if r.prerequisites | default([]) | length > 0 %}
  {% set summary = summary ~ '; Blue/Green prerequisites not met: ' ~ (r.prerequisites | join('; ')) %}
  {% endif %}
  {% set estimate = m.downtime_seconds | default(m.switchover_seconds | default(
     (120 if is_global else 60) if (is_global or byok_rds_strategy == 'blue_green') else none)) %}
  - {{ {'step': 'rds', 'resource': target.global_cluster if is_global else target.identifier, 'changed': s.changed,
        'disruptive': r.plan.disruptive | default(true), 'deferred': deferred, 'estimated_disruption_seconds': estimate,
        'summary': summary} | to_json }}
  {% endfor %}
""")
# The role's variables (vars/main.yml) and each task's own vars, templated where they are used.
ROLE_VARS = ("__byok_rds_allowed", "__byok_rds_plan_only", "__byok_rds_targets", "__byok_rds_primary")
TASK_VARS = ("_databases", "_region_keys", "_deferred_plan", "_round", "_note_planning", "_lines", "_records")


class FormerRole:
    """The role's set_fact/debug chain, one round at a time."""

    def __init__(self, customer, strategy, allowed, check_mode):
        self.facts = {"byok_config_customer": customer, "byok_rds_strategy": strategy,
                      "byok_disruption": {"allowed": allowed}, "ansible_check_mode": check_mode}
        for name in ROLE_VARS + TASK_VARS:
            self.facts[name] = trust_as_template(FORMER_JINJA[name])

    def render(self, name, **extra):
        templar = Templar(loader=DataLoader(), variables={**self.facts, **extra})
        return copy.deepcopy(templar.template(trust_as_template(FORMER_JINJA[name])))

    def value(self, name):
        return self.render(name)

    def round(self, results):
        call = {"results": results}
        facts = {name: self.render(name, byok_rds_call=call) for name in ("byok_rds_calls", "byok_rds_state", "byok_rds_pending")}
        self.facts.update(facts)
        return self.render("msg", byok_rds_call=call)


def play(customer, strategy, allowed, check_mode, rounds):
    """The former role and step_record over the same answers: (former, new) of every value the user or a later
    round sees."""
    former = FormerRole(customer, strategy, allowed, check_mode)
    targets = sr.targets(customer)
    plan_only = sr.plan_only(allowed, strategy, customer)
    assert sr.targets(customer) == former.value("__byok_rds_targets")
    assert plan_only == former.value("__byok_rds_plan_only")
    state, pending = {}, targets
    for results in rounds:
        assert sr.databases_argument(pending, customer) == former.render("databases")
        lines_before = former.round(results)
        state = sr.fold_round(state, results, plan_only and not check_mode)
        pending = sr.still_pending(pending, results)
        assert state == former.facts["byok_rds_state"]
        assert pending == former.facts["byok_rds_pending"]
        assert sr.progress_lines(results, state, check_mode or plan_only) == lines_before
    records = sr.records(targets, state, plan_only, check_mode, strategy)
    assert records == former.render("byok_step_results", byok_step_results=[])
    return records


def resumed_answer(identifier, **kw):
    return answer(identifier, resumed={"at_step": "switchover", "found": ["bg-1", f"{identifier}-old1"]}, **kw)


SCENARIOS = {
    "check mode, blue_green": (ACME, "blue_green", True, True, [
        [answer("acme-db", step="create_green"), answer("acme-reports", step="create_green", status=None)]]),
    "check mode, snapshot_restore outside": (ACME, "snapshot_restore", False, True, [
        [answer("acme-db", step="final_snapshot", plan=SR_PLAN), answer("acme-reports", plan=SR_PLAN)]]),
    "plan only": (ACME, "snapshot_restore", False, False, [
        [answer("acme-db", step="final_snapshot", plan=SR_PLAN), answer("acme-reports", plan=SR_PLAN, elapsed_seconds=None)]]),
    "deferred switchovers": (ACME, "blue_green", False, False, [
        [answer("acme-db", elapsed_seconds=120.0), answer("acme-reports", elapsed_seconds=119.95)],
        [answer("acme-db", deferred=True, step="deferred", elapsed_seconds=33.3),
         answer("acme-reports", deferred=True, step="deferred", changed=False)]]),
    "inside the window, done over rounds": (ACME, "blue_green", True, False, [
        [answer("acme-db"), resumed_answer("acme-reports", prerequisites=[])],
        [answer("acme-db", complete=True, step="done", switchover_seconds=21.34, retained_old="acme-db-old1", strategy="blue_green",
                changed=False),
         answer("acme-reports", step="switchover", switchover_seconds=None)],
        [answer("acme-reports", complete=True, step="done", switchover_seconds=18.0, retained_old=None, strategy="blue_green")]]),
    "snapshot_restore inside": (ACME, "snapshot_restore", True, False, [
        [answer("acme-db", step="restore", plan=SR_PLAN),
         answer("acme-reports", complete=True, step="done", downtime_seconds=75.25, plan=SR_PLAN, strategy="snapshot_restore")],
        [answer("acme-db", complete=True, step="done", downtime_seconds=140, plan=SR_PLAN, strategy="snapshot_restore",
                retained_old="acme-db-byok-old")]]),
    "not finished, prerequisites": (ACME, "blue_green", True, False, [
        [answer("acme-db", prerequisites=["set rds.logical_replication=1 in the cluster parameter group"], step="create_green"),
         answer("acme-reports")]]),
    "second run, nothing to do": (ACME, "blue_green", True, False, [
        [answer("acme-db", complete=True, step="done", changed=False, elapsed_seconds=0.4, retained_old="acme-db-old1"),
         answer("acme-reports", complete=True, step="done", changed=False, elapsed_seconds=0.2, retained_old="acme-reports-old1")]]),
    "global, check mode": (UMBRELLA, "blue_green", True, True, [
        [answer("umbrella-db", step="remove_from_global", plan={"steps": ["a", "b"], "disruptive": True})]]),
    "global, outside": (UMBRELLA, "snapshot_restore", False, False, [
        [answer("umbrella-db", resumed={"at_step": "create_secondary", "members_done": ["umbrella-db-west"]})],
        [answer("umbrella-db", deferred=True, step="deferred", dr_exposure=["us-west-2 without a replica for 20 min"])]]),
    "global, done": (UMBRELLA, "blue_green", True, False, [
        [answer("umbrella-db", step="create_secondary")],
        [answer("umbrella-db", complete=True, step="done", switchover_seconds=44.5, dr_exposure=["a", "b", "c"],
                retained_old="umbrella-db-byok-old", plan={"disruptive": True, "expected_disruption": "two switchovers"})]]),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_same_as_the_former_role(name):
    customer, strategy, allowed, check_mode, rounds = SCENARIOS[name]
    assert play(customer, strategy, allowed, check_mode, rounds)


def test_the_scenarios_cover_every_kind_of_record():
    summaries = [r["summary"] for name in SCENARIOS for r in play(*SCENARIOS[name])]
    for start in ("on the customer key (blue_green", "on the customer key (snapshot_restore", "on the customer key (each region",
                  "deferred to the maintenance window", "plan: ", "not finished at step"):
        assert any(s.startswith(start) for s in summaries), start
    assert any("prerequisites not met" in s for s in summaries)
    assert BG_PLAN["steps"]  # the plans are the fixtures'
