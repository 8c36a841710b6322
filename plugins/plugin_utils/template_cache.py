# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compile each of the roles' Jinja templates once per run instead of once per task and customer.

ansible-core compiles a template (Jinja parse, code generation, Python compile) every time it renders one, and each
task of each customer renders in a freshly forked worker: a fleet run compiles the same few hundred templates and
conditionals for every customer, about a sixth of its CPU (docs/fleet.md). This keeps the compiled Python code of every
template, keyed by its source and every setting that shapes the code: in memory (the main process's entries reach the
workers it forks) and in a private directory for the run (what one worker compiled, the next ones read back with
`marshal`). Rendering is unchanged: the same code object Jinja would have produced, run the same way.

Off with BYOK_TEMPLATE_CACHE=false, and when Ansible's template debugging is on (it writes each compiled source).
"""
from __future__ import annotations

import atexit
import contextvars
import hashlib
import marshal
import os
import shutil
import stat
import sys
import tempfile
import types

try:
    import jinja2
    from jinja2.environment import TemplateExpression
    from ansible import __version__ as ansible_version
    from ansible._internal._templating import _jinja_bits
except ImportError:  # another ansible-core layout: no cache, templates compile as before
    _jinja_bits = None

# Jinja's own, as found at import (the cache wraps them).
ORIGINALS = {name: getattr(_jinja_bits.AnsibleEnvironment, name) for name in ("compile", "compile_expression")} \
    if _jinja_bits is not None and hasattr(_jinja_bits, "AnsibleEnvironment") else {}

ENABLE_VARIABLE = "BYOK_TEMPLATE_CACHE"
# Environment settings that change the code Jinja generates for a source.
_SETTINGS = ("block_start_string", "block_end_string", "variable_start_string", "variable_end_string",
             "comment_start_string", "comment_end_string", "line_statement_prefix", "line_comment_prefix",
             "trim_blocks", "lstrip_blocks", "newline_sequence", "keep_trailing_newline", "optimized", "is_async",
             "autoescape", "finalize", "code_generator_class", "extensions")
_PENDING = contextvars.ContextVar("byok_template_cache_pending", default=None)


def _name(value):
    """A stable text for a setting: functions and classes by their qualified name, the rest by repr."""
    if isinstance(value, dict):
        return repr(sorted(value))
    qualified = getattr(value, "__qualname__", None)
    return f"{getattr(value, '__module__', '')}.{qualified}" if qualified else repr(value)


class TemplateCache:
    """Code objects by digest: this process's dictionary, then the run's directory."""

    def __init__(self, directory):
        self.directory = directory
        self.owner = os.getpid()
        self.codes = {}
        self.usable_directory = None  # checked on first use: made by this user, private

    def digest(self, env, kind, source, *extra):
        if getattr(env, "_debuggable_template_source", False):
            return None
        context = _jinja_bits._TemplateCompileContext.current(optional=True)  # pylint: disable=protected-access
        parts = [kind, sys.implementation.cache_tag, jinja2.__version__, ansible_version, _name(type(env)),
                 repr(getattr(context, "escape_backslashes", None)), *(_name(getattr(env, s, None)) for s in _SETTINGS),
                 *(repr(e) for e in extra)]
        hashed = hashlib.sha256("\0".join(parts).encode())
        hashed.update(b"\0\0")
        hashed.update(source.encode("utf-8", "surrogatepass"))
        return hashed.hexdigest()

    def _directory_ok(self):
        if self.usable_directory is None:
            try:
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                info = os.lstat(self.directory)
                self.usable_directory = (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
                                         and not info.st_mode & 0o077)
            except OSError:
                self.usable_directory = False
        return self.usable_directory

    def get(self, digest):
        code = self.codes.get(digest)
        if code is None and self._directory_ok():
            try:
                with open(os.path.join(self.directory, digest), "rb") as cached:
                    code = marshal.load(cached)
            except (OSError, EOFError, ValueError, TypeError):
                return None
            if not isinstance(code, types.CodeType):
                return None
            self.codes[digest] = code
        return code

    def put(self, digest, code):
        self.codes[digest] = code
        if not self._directory_ok():
            return
        try:  # written aside and renamed: a reader sees the whole file or none
            handle, partial = tempfile.mkstemp(dir=self.directory, prefix=".partial-")
            with os.fdopen(handle, "wb") as out:
                marshal.dump(code, out)
            os.replace(partial, os.path.join(self.directory, digest))
        except OSError:
            pass

    def remove(self):
        if os.getpid() == self.owner:  # a forked worker inherits the exit hook; only the run's process cleans up
            shutil.rmtree(self.directory, ignore_errors=True)


_CACHE = None


def install():
    """Patch Ansible's Jinja environment class to use the cache; once per process, a no-op when unavailable."""
    global _CACHE  # pylint: disable=global-statement
    if _CACHE is not None or _jinja_bits is None or os.environ.get(ENABLE_VARIABLE, "true").lower() in ("0", "false", "no"):
        return _CACHE
    if not ORIGINALS or not hasattr(_jinja_bits, "_TemplateCompileContext"):
        return None
    environment = _jinja_bits.AnsibleEnvironment
    _CACHE = cache = TemplateCache(tempfile.mkdtemp(prefix="byok-templates-"))
    atexit.register(cache.remove)
    compile_source = ORIGINALS["compile"]
    compile_expression = ORIGINALS["compile_expression"]

    def cached_compile(self, source, name=None, filename=None, raw=False, defer_init=False):
        if raw:
            return compile_source(self, source, name, filename, raw, defer_init)
        if isinstance(source, str):
            digest = cache.digest(self, "template", source, name, filename, defer_init)
        else:  # the node tree of compile_expression, whose source is known there
            digest = _PENDING.get()
            _PENDING.set(None)
        code = cache.get(digest) if digest else None
        if code is None:
            code = compile_source(self, source, name, filename, raw, defer_init)
            if digest:
                cache.put(digest, code)
        return code

    def cached_compile_expression(self, source, undefined_to_none=True):
        digest = cache.digest(self, "expression", source, undefined_to_none) if isinstance(source, str) else None
        code = cache.get(digest) if digest else None
        if code is not None:  # what Jinja's compile_expression builds, without parsing again
            return TemplateExpression(self.template_class.from_code(self, code, self.make_globals(None), None), undefined_to_none)
        token = _PENDING.set(digest)
        try:
            return compile_expression(self, source, undefined_to_none)
        finally:
            _PENDING.reset(token)

    environment.compile = cached_compile
    environment.compile_expression = cached_compile_expression
    return cache
