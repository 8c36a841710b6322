#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: write_report
short_description: Write a report file (JSON, Markdown, HTML) when its content changed
version_added: 0.1.0
description:
  - Writes O(content) to O(dest), creating the missing parent directories, and reports C(changed) only when the
    file's content or mode changed. The write is atomic (a temporary file in the same directory, then a rename), so a
    reader never sees half a report.
  - The roles write their per-customer reports with it. It does what M(ansible.builtin.copy) with C(content) does for
    these files in one module run instead of two (C(stat), then C(copy)), and it runs in the worker process on the
    controller with the others (docs/fleet.md).
  - With O(template), the action renders a template of the role first, as M(ansible.builtin.template) does (with the
    task's variables, C(trim_blocks)), and writes the result.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  dest:
    description: Path of the file.
    type: path
    required: true
  content:
    description: The file's whole content. One of O(content) and O(template) is required.
    type: str
  template:
    description:
      - A Jinja template (a path, or a name looked up in the role's C(templates/) directory) rendered on the controller
        with the task's variables; the rendered text is the file's content.
      - Rendered by the action without the deep copy of every variable that the C(ansible.builtin.template) lookup
        makes (about 0.06 CPU-second per customer and document in a fleet run).
    type: str
  mode:
    description: Permissions of the file.
    type: raw
    default: "0640"
  directory_mode:
    description: Permissions of parent directories it creates (existing ones are left as they are).
    type: raw
    default: "0750"
attributes:
  check_mode:
    support: full
    description: Says whether the file would change, without writing it.
  diff_mode:
    support: full
    description: Shows the old and new content.
  idempotent:
    support: full
    description: The same content and mode again is C(changed=false).
"""

EXAMPLES = r"""
- name: Write the customer's JSON report
  mattermost.byok.write_report:
    dest: "{{ byok_audit_artifacts_dir }}/customers/{{ inventory_hostname }}.json"
    content: "{{ report | to_nice_json }}\n"
  delegate_to: localhost
  check_mode: false

- name: Write the onboarding document from the role's template
  mattermost.byok.write_report:
    dest: "{{ byok_key_artifacts_dir }}/onboarding/{{ inventory_hostname }}.md"
    template: onboarding.md.j2
  delegate_to: localhost
  check_mode: false
"""

RETURN = r"""
dest:
  description: The file written.
  returned: always
  type: str
size:
  description: Bytes of content.
  returned: always
  type: int
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.mattermost.byok.plugins.module_utils.fleet import report_files


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def make_parents(module, directory, mode):
    for path in report_files.make_parents(directory):
        module.set_mode_if_different(path, mode, False)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            content=dict(type="str"),
            template=dict(type="str"),  # rendered into content by the action plugin
            mode=dict(type="raw", default="0640"),
            directory_mode=dict(type="raw", default="0750"),
        ),
        required_one_of=[("content", "template")],
        mutually_exclusive=[("content", "template")],
        supports_check_mode=True,
    )
    if module.params["template"] is not None:
        module.fail_json(msg="template: rendered by the mattermost.byok.write_report action on the controller; "
                             "run the module through it, or give content")
    dest, mode = module.params["dest"], module.params["mode"]
    if os.path.isdir(dest):
        module.fail_json(msg=f"dest: {dest} is a directory; give the report's file path")
    content = to_bytes(module.params["content"], errors="surrogate_or_strict")
    before = read_bytes(dest)
    changed = before != content
    result = dict(dest=dest, size=len(content))
    if module._diff:
        result["diff"] = dict(before_header=dest, after_header=dest, before="" if before is None else before.decode("utf-8", "replace"),
                              after=module.params["content"])
    if module.check_mode:
        module.exit_json(changed=changed or (before is not None and module.set_mode_if_different(dest, mode, False, diff=None)), **result)
    if changed:
        directory = os.path.dirname(os.path.abspath(dest))
        make_parents(module, directory, module.params["directory_mode"])
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(dest)}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            module.set_mode_if_different(tmp, mode, False)
            os.replace(tmp, dest)
        except OSError as e:
            os.unlink(tmp)
            module.fail_json(msg=f"Cannot write {dest}: {e}")
    else:
        changed = module.set_mode_if_different(dest, mode, False)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
