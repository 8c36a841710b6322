# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""template_cache: templates render exactly as without it, each source compiles once per run (across forked
workers), settings that shape the code keep their own entries, and a directory that is not private is not trusted."""

from __future__ import annotations

import os
import pickle

import pytest
from ansible._internal._templating import _jinja_bits
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.mattermost.byok.plugins.plugin_utils import template_cache

VARIABLES = {"customer": "acme", "services": ["s3", "rds", "ebs"], "keys": {"s3": "arn:a", "rds": "arn:b"}, "n": 3,
             "text": "a\\b"}
TEMPLATES = [
    "{{ customer }}",
    "{{ services | map('upper') | join(', ') }} for {{ customer | title }}",
    "{% for s in services %}\n{{ loop.index }}. {{ s }}\n{% endfor %}\ndone\n",
    "{{ keys | dict2items | map(attribute='value') | list }}",
    "{{ n * 2 }}",
    "{{ {'a': n, 'b': services | length} }}",
    "#jinja2:variable_start_string:'[[', variable_end_string:']]'\n[[ customer ]] and {{ customer }}",
    "{{ text }} {{ 'x\\ny' }}",
    "{% if n > 2 %}many{% else %}few{% endif %}",
]
CONDITIONALS = ["n > 2", "'s3' in services", "customer is string and services | length == 3", "missing is not defined"]


def render_all():
    templar = Templar(loader=DataLoader(), variables=VARIABLES)
    rendered = [templar.template(trust_as_template(t)) for t in TEMPLATES]
    rendered += [templar.evaluate_conditional(trust_as_template(c)) for c in CONDITIONALS]
    return rendered


@pytest.fixture
def expected(monkeypatch):
    """What the templates render to with Jinja's own compilation (whatever an earlier import installed)."""
    for name, original in template_cache.ORIGINALS.items():
        monkeypatch.setattr(_jinja_bits.AnsibleEnvironment, name, original)
    return render_all()


@pytest.fixture
def compiles(monkeypatch, tmp_path, expected):  # pylint: disable=redefined-outer-name,unused-argument
    """Install the cache on a private directory; count the compilations it does not spare."""
    monkeypatch.setattr(template_cache, "_CACHE", None)
    counted = []
    original = template_cache.ORIGINALS["compile"]

    def counting(self, source, *args, **kwargs):
        counted.append(source if isinstance(source, str) else "<expression>")
        return original(self, source, *args, **kwargs)

    monkeypatch.setitem(template_cache.ORIGINALS, "compile", counting)
    monkeypatch.setattr(template_cache.tempfile, "mkdtemp", lambda prefix: str(tmp_path / "cache"))
    cache = template_cache.install()
    assert cache is not None
    return counted


def test_renders_as_without_the_cache_and_compiles_each_source_once(compiles, expected):
    first = render_all()
    compiled_first = len(compiles)
    second = render_all()
    assert first == second == expected
    assert first[2] == "1. s3\n2. rds\n3. ebs\ndone\n"
    assert first[6] == "acme and {{ customer }}"
    assert compiled_first >= len(TEMPLATES) + len(CONDITIONALS)
    assert len(compiles) == compiled_first  # the second and third pass compiled nothing


def test_a_forked_worker_reads_what_an_earlier_worker_compiled(compiles, expected):
    def in_child(work):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # a worker: inherits the parent's (empty) memory, shares the directory
            os.close(read)
            before = len(compiles)
            result = work()
            os.write(write, pickle.dumps((result, len(compiles) - before)))
            os._exit(0)  # pylint: disable=protected-access
        os.close(write)
        with os.fdopen(read, "rb") as answer:
            data = answer.read()
        os.waitpid(pid, 0)
        return pickle.loads(data)

    first, compiled_by_first = in_child(render_all)
    second, compiled_by_second = in_child(render_all)
    assert first == second == expected
    assert compiled_by_first >= len(TEMPLATES)
    assert compiled_by_second == 0


def test_settings_that_shape_the_code_have_their_own_entries(compiles):
    env = Templar(loader=DataLoader(), variables={}).environment
    cache = template_cache._CACHE  # pylint: disable=protected-access
    source = "{{ 'a\\nb' }}"
    plain = cache.digest(env, "template", source, None, None, False)
    with _jinja_bits._TemplateCompileContext(escape_backslashes=True):  # pylint: disable=protected-access
        escaped = cache.digest(env, "template", source, None, None, False)
    overlay = cache.digest(env.overlay(variable_start_string="[["), "template", source, None, None, False)
    expression = cache.digest(env, "expression", source, True)
    assert len({plain, escaped, overlay, expression}) == 4
    assert plain == cache.digest(env, "template", source, None, None, False)


def test_a_damaged_entry_is_compiled_again(compiles, expected, tmp_path):
    render_all()
    directory = tmp_path / "cache"
    for entry in directory.iterdir():
        entry.write_bytes(b"not marshal data")
    template_cache._CACHE.codes.clear()  # pylint: disable=protected-access
    before = len(compiles)
    assert render_all() == expected
    assert len(compiles) > before


def test_a_directory_others_can_write_is_not_used(compiles, tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o777)
    os.chmod(directory, 0o777)
    render_all()
    assert not list(directory.iterdir())
    assert template_cache._CACHE.usable_directory is False  # pylint: disable=protected-access


def test_the_run_directory_is_removed_by_the_run_only(compiles, tmp_path):
    render_all()
    cache = template_cache._CACHE  # pylint: disable=protected-access
    cache.owner = os.getpid() + 1  # as in a forked worker
    cache.remove()
    assert (tmp_path / "cache").exists()
    cache.owner = os.getpid()
    cache.remove()
    assert not (tmp_path / "cache").exists()


def test_switched_off_it_changes_nothing(monkeypatch, expected):  # pylint: disable=unused-argument
    monkeypatch.setattr(template_cache, "_CACHE", None)
    monkeypatch.setenv(template_cache.ENABLE_VARIABLE, "false")
    compile_before = _jinja_bits.AnsibleEnvironment.compile
    assert template_cache.install() is None
    assert _jinja_bits.AnsibleEnvironment.compile is compile_before is template_cache.ORIGINALS["compile"]
