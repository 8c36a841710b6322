# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline checks of the AWX definitions under awx/: the survey specs and the custom credential types.

There is no AWX here, so the rules AWX applies are restated: the survey spec checks of the survey_spec endpoint
(awx/api/views JobTemplateSurveySpec._validate_spec_data) and of a launch (SurveyJobTemplateMixin.
_survey_element_validation, which also decides whether a default is applied), and the credential type checks of
CredentialTypeInputField / CredentialTypeInjectorField (awx/main/fields.py), including how an injector renders.
On top of them, the project's own rule: every variable a survey or an injector sets is one the roles read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2
import jinja2.sandbox
import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
AWX = ROOT / "awx"
SURVEYS = sorted((AWX / "surveys").glob("*.json"))
CREDENTIAL_TYPES = sorted((AWX / "credential_types").glob("*.yml"))

# AWX's SURVEY_TYPE_MAPPING: question type -> type of its default.
SURVEY_TYPE_MAPPING = {
    "text": str, "textarea": str, "password": str, "multiplechoice": str, "multiselect": str,
    "integer": int, "float": (float, int),
}
VARIABLE_NAME = re.compile(r"^[a-zA-Z_]+[a-zA-Z0-9_]*$")


def role_options() -> dict[str, dict]:
    """Every variable documented by a role's meta/argument_specs.yml (any entry point)."""
    options: dict[str, dict] = {}
    for spec_file in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        specs = yaml.safe_load(spec_file.read_text())["argument_specs"]
        for entry in specs.values():
            for name, spec in (entry.get("options") or {}).items():
                options.setdefault(name, spec)
    return options


def read_by_fleet_playbook(variable: str) -> bool:
    """Read by an entry playbook: byok.yml, or key_watch.yml (the key watch's job template)."""
    return any(re.search(rf"\b{re.escape(variable)}\b", (ROOT / "playbooks" / name).read_text()) is not None
               for name in ("byok.yml", "key_watch.yml"))


def check_read_by_project(variable: str, what: str) -> None:
    if variable in role_options() or read_by_fleet_playbook(variable):
        return
    pytest.fail(f"{what} sets {variable}, which no role documents in meta/argument_specs.yml and byok.yml does not read")


def awx_spec_errors(spec: dict) -> list[str]:
    """The errors AWX's survey_spec endpoint would answer with (first one per question, as AWX stops there)."""
    errors = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(spec.get(field), kind):
            errors.append(f"'{field}' missing or not a {kind.__name__}")
    if errors:
        return errors
    if not spec["spec"]:
        return ["'spec' doesn't contain any items"]
    seen = set()
    for idx, item in enumerate(spec["spec"]):
        if not isinstance(item, dict):
            errors.append(f"question {idx} is not an object")
            continue
        missing = [f for f in ("type", "question_name", "variable", "required") if f not in item]
        if missing:
            errors.append(f"question {idx}: {missing} missing")
            continue
        if not all(isinstance(item[f], str) for f in ("type", "question_name", "variable")):
            errors.append(f"question {idx}: type, question_name and variable must be strings")
        if not isinstance(item["required"], bool):
            errors.append(f"question {idx}: required must be a boolean")
        if item["variable"] in seen:
            errors.append(f"question {idx}: variable {item['variable']} duplicated")
        seen.add(item["variable"])
        qtype = item["type"]
        if qtype not in SURVEY_TYPE_MAPPING:
            errors.append(f"question {idx}: type {qtype!r} is not one of {', '.join(SURVEY_TYPE_MAPPING)}")
            continue
        if "default" in item and item["default"] != "" and not isinstance(item["default"], SURVEY_TYPE_MAPPING[qtype]):
            errors.append(f"question {idx}: default {item['default']!r} is not a {qtype} default")
        for key in ("min", "max"):
            if key in item and item[key] is not None and not isinstance(item[key], int):
                errors.append(f"question {idx}: {key} must be an integer")
        if qtype in ("multiselect", "multiplechoice"):
            if "choices" not in item:
                errors.append(f"question {idx}: {qtype} must list choices")
                continue
            choices = item["choices"].splitlines() if isinstance(item["choices"], str) else item["choices"]
            if "default" in item:
                defaults = item["default"].splitlines() if isinstance(item["default"], str) else item["default"]
                if qtype == "multiplechoice" and len(defaults) > 1:
                    errors.append(f"question {idx}: a multiple choice question has one default")
                if any(d not in choices for d in defaults):
                    errors.append(f"question {idx}: default not among the choices")
        if isinstance(item.get("default"), str) and item["default"].startswith("$encrypted$"):
            errors.append(f"question {idx}: $encrypted$ is reserved")
    return errors


def awx_answer_errors(item: dict, answers: dict) -> list[str]:
    """AWX's launch-time check of one question against the extra vars (also used for defaults)."""
    var, qtype = item["variable"], item["type"]
    if var not in answers:
        return [f"'{var}' value missing"] if item["required"] else []
    value = answers[var]
    if qtype in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return [f"{var}: expected a string"]
        if item.get("min") not in ("", None) and len(value) < int(item["min"]):
            return [f"{var}: too short"]
        if item.get("max") not in ("", None) and len(value) > int(item["max"]):
            return [f"{var}: too long"]
    elif qtype == "integer":
        if isinstance(value, bool) or not isinstance(value, int):  # AWX: type(value) != int
            return [f"{var}: expected an integer"]
        if item.get("min") not in ("", None) and value < int(item["min"]):
            return [f"{var}: too small"]
        if item.get("max") not in ("", None) and value > int(item["max"]):
            return [f"{var}: too large"]
    elif qtype == "multiselect":
        if not isinstance(value, list):
            return [f"{var}: expected a list"]
        return [f"{var}: {v!r} not a choice" for v in value if v not in item["choices"]]
    elif qtype == "multiplechoice" and value not in item["choices"]:
        return [f"{var}: {value!r} not a choice"]
    return []


@pytest.fixture(params=SURVEYS, ids=[p.stem for p in SURVEYS])
def survey(request: pytest.FixtureRequest) -> dict:
    return json.loads(request.param.read_text())


def test_surveys_exist_for_every_template() -> None:
    assert {p.stem for p in SURVEYS} == {"plan", "apply", "audit", "workflow", "watch"}


def test_survey_is_accepted_by_awx(survey: dict) -> None:
    assert awx_spec_errors(survey) == []


def test_survey_defaults_are_applied_at_launch(survey: dict) -> None:
    # AWX applies a default only when it passes the launch check; one that does not is dropped without a word.
    for item in survey["spec"]:
        if "default" in item:
            assert awx_answer_errors(item, {item["variable"]: item["default"]}) == [], item["variable"]
        # A multiselect default must be a string to be saved and a list to be applied: it never is. None, then.
        if item["type"] == "multiselect":
            assert "default" not in item, f"{item['variable']}: a multiselect default is never applied by AWX"


def test_survey_variables_are_read_by_the_roles(survey: dict) -> None:
    for item in survey["spec"]:
        check_read_by_project(item["variable"], f"survey {survey['name']!r}")


def test_survey_answers_fit_the_role_argument_specs(survey: dict) -> None:
    options = role_options()
    for item in survey["spec"]:
        spec = options.get(item["variable"])
        if spec is None:
            continue
        if spec.get("type") == "bool":
            # No boolean question type in AWX: a choice of the strings the roles turn into booleans with | bool.
            assert item["type"] == "multiplechoice" and sorted(item["choices"]) == ["false", "true"], item
        elif spec.get("type") == "int":
            assert item["type"] == "integer", item
        if "choices" in spec and item["type"] in ("multiselect", "multiplechoice"):
            assert set(item["choices"]) <= set(spec["choices"]), item


def test_service_choices_are_the_services_byok_covers(survey: dict) -> None:
    services = role_options()["byok_services"]["choices"]
    for item in survey["spec"]:
        if item["variable"] == "byok_services_only":
            assert item["type"] == "multiselect" and item["required"] is False
            assert sorted(item["choices"]) == sorted(services)


def test_disruption_is_off_unless_asked_for(survey: dict) -> None:
    for item in survey["spec"]:
        if item["variable"] == "byok_allow_disruption":
            assert item["required"] is True and item["default"] == "false"


def test_workflow_answers_are_accepted_by_its_jobs() -> None:
    # The workflow passes its survey answers to the plan and apply jobs, whose surveys must take the same variables.
    def questions(name: str) -> dict:
        return {q["variable"]: q for q in json.loads((AWX / "surveys" / f"{name}.json").read_text())["spec"]}
    workflow = questions("workflow")
    for job in ("plan", "apply"):
        for variable, question in workflow.items():
            assert variable in questions(job), (job, variable)
            for field in ("type", "choices", "min", "max"):
                assert questions(job)[variable].get(field) == question.get(field), (job, variable, field)


def test_survey_answers_at_launch() -> None:
    apply = json.loads((AWX / "surveys" / "apply.json").read_text())
    questions = {q["variable"]: q for q in apply["spec"]}
    services, disruption = questions["byok_services_only"], questions["byok_allow_disruption"]
    assert awx_answer_errors(services, {"byok_services_only": ["s3", "rds"]}) == []
    assert awx_answer_errors(services, {}) == []  # empty: every enabled service
    assert awx_answer_errors(services, {"byok_services_only": ["efs"]}) == ["byok_services_only: 'efs' not a choice"]
    assert awx_answer_errors(services, {"byok_services_only": "s3"}) == ["byok_services_only: expected a list"]
    assert awx_answer_errors(disruption, {"byok_allow_disruption": "yes"}) == ["byok_allow_disruption: 'yes' not a choice"]
    audit = {q["variable"]: q for q in json.loads((AWX / "surveys" / "audit.json").read_text())["spec"]}
    sample = audit["byok_audit_s3_object_sample"]
    assert awx_answer_errors(sample, {"byok_audit_s3_object_sample": -1}) == ["byok_audit_s3_object_sample: too small"]
    assert awx_answer_errors(sample, {"byok_audit_s3_object_sample": "20"}) == ["byok_audit_s3_object_sample: expected an integer"]


def test_the_checker_refuses_what_awx_refuses() -> None:
    good = {"question_name": "q", "variable": "v", "type": "multiplechoice", "required": True, "choices": ["a", "b"]}
    assert awx_spec_errors({"name": "", "description": "", "spec": [good]}) == []
    assert awx_spec_errors({"name": "", "spec": [good]})
    assert awx_spec_errors({"name": "", "description": "", "spec": []})
    assert awx_spec_errors({"name": "", "description": "", "spec": [dict(good, type="boolean")]})
    assert awx_spec_errors({"name": "", "description": "", "spec": [dict(good, default="c")]})
    assert awx_spec_errors({"name": "", "description": "", "spec": [dict(good, required="true")]})
    assert awx_spec_errors({"name": "", "description": "", "spec": [good, good]})
    assert awx_spec_errors({"name": "", "description": "", "spec": [{k: v for k, v in good.items() if k != "variable"}]})
    assert awx_spec_errors({"name": "", "description": "", "spec": [dict(good, type="integer", default="5")]})


# ---- credential types --------------------------------------------------------------------------------------------

# CredentialTypeInputField.schema and CredentialTypeInjectorField.schema.
INPUTS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "required": {"type": "array", "items": {"type": "string"}},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"enum": ["string", "boolean"]},
                    "format": {"enum": ["ssh_private_key", "url"]},
                    "choices": {"type": "array", "minItems": 1, "items": {"type": "string"}, "uniqueItems": True},
                    "id": {"type": "string", "pattern": "^[a-zA-Z_]+[a-zA-Z0-9_]*$"},
                    "label": {"type": "string"},
                    "help_text": {"type": "string"},
                    "multiline": {"type": "boolean"},
                    "secret": {"type": "boolean"},
                    "ask_at_runtime": {"type": "boolean"},
                    "default": {},
                },
                "additionalProperties": False,
                "required": ["id", "label"],
            },
        },
    },
}
INJECTORS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "file": {"type": "object", "patternProperties": {r"^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$": {"type": "string"}},
                 "additionalProperties": False},
        "env": {"type": "object", "patternProperties": {"^[a-zA-Z_]+[a-zA-Z0-9_]*$": {"type": "string", "pattern": "^[\x00-\x7F]*$"}},
                "additionalProperties": False},
        "extra_vars": {"type": "object", "patternProperties": {"^[a-zA-Z_]+[a-zA-Z0-9_]*$": {"type": "string"}},
                       "additionalProperties": False},
    },
}


@pytest.fixture(params=CREDENTIAL_TYPES, ids=[p.stem for p in CREDENTIAL_TYPES])
def credential_type(request: pytest.FixtureRequest) -> dict:
    return yaml.safe_load(request.param.read_text())


def render_injectors(ctype: dict, inputs: dict) -> dict:
    """How AWX renders extra_vars injectors at launch: fields not given are undefined and render empty."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment()
    return {k: env.from_string(v).render(**inputs) for k, v in ctype["injectors"].get("extra_vars", {}).items()}


def test_credential_types_exist() -> None:
    names = {yaml.safe_load(p.read_text())["name"] for p in CREDENTIAL_TYPES}
    assert names == {"Mattermost BYOK customer role", "Mattermost BYOK webhook", "Mattermost BYOK external key material"}


def test_credential_type_is_accepted_by_awx(credential_type: dict) -> None:
    assert set(credential_type) <= {"name", "kind", "description", "inputs", "injectors"}
    assert credential_type["kind"] in ("cloud", "net")  # the only kinds a custom type may have
    inputs, injectors = credential_type["inputs"], credential_type["injectors"]
    jsonschema.Draft4Validator(INPUTS_SCHEMA).validate(inputs)
    jsonschema.Draft4Validator(INJECTORS_SCHEMA).validate(injectors)
    assert "dependencies" not in inputs
    ids = [f["id"] for f in inputs["fields"]]
    assert len(ids) == len(set(ids)) and "tower" not in ids
    for field in inputs["fields"]:
        if field.get("type", "string") != "string":
            assert not {"choices", "multiline", "format", "secret"} & set(field), field
    assert set(inputs.get("required", [])) <= set(ids)
    assert not [k for k in injectors.get("env", {}) if k.startswith("ANSIBLE_")]
    # Every template renders with only the defined fields (AWX uses StrictUndefined for this check).
    strict = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    for kind in ("env", "extra_vars", "file"):
        for tmpl in injectors.get(kind, {}).values():
            strict.from_string(tmpl).render({i: "EXAMPLE" for i in ids})


def test_credential_type_sets_variables_the_roles_read(credential_type: dict) -> None:
    for variable in credential_type["injectors"]["extra_vars"]:
        check_read_by_project(variable, f"credential type {credential_type['name']!r}")


def test_secrets_are_secret_fields(credential_type: dict) -> None:
    secret = {f["id"] for f in credential_type["inputs"]["fields"] if f.get("secret")}
    assert secret >= {"external_id", "webhook_url", "key_material"} & {f["id"] for f in credential_type["inputs"]["fields"]}


def test_customer_role_injection() -> None:
    ctype = yaml.safe_load((AWX / "credential_types" / "customer_role.yml").read_text())
    arn = "arn:aws:iam::222222222222:role/mattermost-byok-automation"
    assert render_injectors(ctype, {"role_arn": arn, "external_id": "x-123"}) == {
        "byok_assume_role_arn": arn, "byok_assume_role_external_id": "x-123"}
    # Without an external id AWX injects an empty string, which byok_config treats as none.
    assert render_injectors(ctype, {"role_arn": arn})["byok_assume_role_external_id"] == ""
    assert role_options()["byok_assume_role_external_id"]["default"] == ""


def test_webhook_and_external_key_injection() -> None:
    hook = yaml.safe_load((AWX / "credential_types" / "webhook.yml").read_text())
    assert render_injectors(hook, {"webhook_url": "https://chat.example.com/hooks/abc"}) == {
        "byok_mattermost_webhook_url": "https://chat.example.com/hooks/abc", "byok_announce_channel": ""}
    assert role_options()["byok_announce_channel"]["default"] == ""  # empty means the webhook's own channel
    key = yaml.safe_load((AWX / "credential_types" / "external_key.yml").read_text())
    assert render_injectors(key, {"customer": "umbrella", "key_material": "QUJD"}) == {
        "byok_key_material": "QUJD", "byok_key_material_customer": "umbrella"}
    assert role_options()["byok_key_material"].get("no_log") is True
