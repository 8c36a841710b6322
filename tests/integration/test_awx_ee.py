# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""execution-environment.yml, offline: `ansible-builder create` writes the build context, which must hold the
collection and its requirements; then the context's own galaxy step and introspection run here as the image build
would run them (without Galaxy: amazon.aws comes from the venv), and the installed collection's fleet playbook
resolves every role and module from that install alone. What needs a container runtime, Galaxy, PyPI and the kops
and kubernetes downloads (`ansible-builder build`) cannot run here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.awx_support import ROOT, ansible_env, tool

AMAZON_AWS = Path(os.path.dirname(yaml.__file__)).parent / "ansible_collections" / "amazon" / "aws"


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ctx = tmp_path_factory.mktemp("ee") / "context"
    result = subprocess.run([tool("ansible-builder"), "create", "-f", "execution-environment.yml", "--context", str(ctx),
                             "--output-filename", "Containerfile"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return ctx


@pytest.fixture(scope="module")
def installed(context: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The galaxy stage, as the Containerfile runs it (same requirements file, same working directory)."""
    collections = tmp_path_factory.mktemp("ee-collections")
    (collections / "ansible_collections" / "amazon").mkdir(parents=True)
    os.symlink(AMAZON_AWS, collections / "ansible_collections" / "amazon" / "aws")
    # Nothing else to look in (the checkout's .collections links mattermost.byok: it would count as installed).
    (collections / "ansible.cfg").write_text("[defaults]\n")
    env = ansible_env(ANSIBLE_CONFIG=str(collections / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(collections),
                      ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1")
    result = subprocess.run([tool("ansible-galaxy"), "collection", "install", "--offline", "-r", "requirements.yml",
                             "--collections-path", str(collections)], cwd=context / "_build", capture_output=True, text=True,
                            timeout=300, check=False, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return collections


def test_containerfile_builds_the_stages(context: Path) -> None:
    text = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/fedora/fedora:42"' in text
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core>=2.21,<2.22 ansible-runner>=2.4"' in text
    assert "COPY _build /build" in text
    assert 'ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml ' \
           '--collections-path "/usr/share/ansible/collections"' in text
    assert "introspect.py introspect" in text  # the collections' requirements.txt files are installed from here
    assert "COPY --from=galaxy /usr/share/ansible /usr/share/ansible" in text
    for arg in ("KOPS_VERSION", "KOPS_SHA256", "KUBECTL_VERSION", "KUBECTL_SHA256"):
        assert f"ARG {arg}" in text
    assert text.count("sha256sum -c -") == 2  # both downloads are checked
    assert text.rstrip().splitlines()[-3] == "USER 1000"


def test_context_holds_the_collection(context: Path) -> None:
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert requirements["collections"] == [
        {"name": "amazon.aws", "version": galaxy["dependencies"]["amazon.aws"]},
        {"name": "collections/mattermost.byok", "type": "dir"},
    ]
    copy = context / "_build" / "collections" / "mattermost.byok"
    for name in ("galaxy.yml", "README.md", "requirements.txt", "meta/runtime.yml", "meta/execution-environment.yml",
                 "playbooks/byok.yml"):
        assert (copy / name).read_bytes() == (ROOT / name).read_bytes(), name
    for top in ("plugins", "roles"):
        wanted = {p.relative_to(ROOT) for p in (ROOT / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        present = {p.relative_to(copy) for p in (copy / top).rglob("*") if p.is_file()}
        assert wanted <= present, sorted(map(str, wanted - present))


def test_collection_metadata_names_its_requirements() -> None:
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text())
    assert meta == {"version": 1, "dependencies": {"python": "requirements.txt"}}
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert not {"requirements.txt", "meta", "meta/execution-environment.yml"} & set(galaxy.get("build_ignore", []))


def test_galaxy_stage_installs_the_collection(installed: Path) -> None:
    byok = installed / "ansible_collections" / "mattermost" / "byok"
    assert yaml.safe_load((byok / "MANIFEST.json").read_text())["collection_info"]["version"] == \
        yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    modules = {p.name for p in (ROOT / "plugins" / "modules").glob("*.py")}
    assert modules <= {p.name for p in (byok / "plugins" / "modules").glob("*.py")}
    assert not list(byok.rglob("__pycache__"))  # build_ignore and the default ignores applied


def test_builder_stage_finds_the_python_requirements(context: Path, installed: Path) -> None:
    result = subprocess.run([tool("python"), str(context / "_build" / "scripts" / "introspect.py"), "introspect", str(installed)],
                            capture_output=True, text=True, timeout=120, check=True)
    found = yaml.safe_load(result.stdout)
    ours = [line.split("#")[0].strip() for line in found["python"] if "from collection mattermost.byok" in line]
    wanted = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert ours == wanted
    assert "boto3>=1.44.0" in ours and "botocore>=1.44.0" in ours


def test_installed_collection_runs_the_fleet_playbook(installed: Path, tmp_path: Path) -> None:
    # Only the EE's collections: roles and modules that byok.yml names must all be in the install.
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    playbook = installed / "ansible_collections" / "mattermost" / "byok" / "playbooks" / "byok.yml"
    result = subprocess.run([tool("ansible-playbook"), "--syntax-check", "-i", str(ROOT / "inventories" / "demo" / "hosts.yml"),
                             str(playbook)], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
                            env=ansible_env(ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(installed)))
    assert result.returncode == 0, result.stdout + result.stderr
