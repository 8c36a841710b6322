"""The versions the collection claims are the versions CI runs: meta/runtime.yml, the execution environment's pin,
galaxy.yml's amazon.aws range and the installed ansible-core/amazon.aws must agree."""
from __future__ import annotations

from pathlib import Path

import yaml
from ansible.module_utils.compat.version import LooseVersion
from ansible.release import __version__ as core_version

ROOT = Path(__file__).resolve().parents[2]


def _range(spec: str) -> tuple[LooseVersion, LooseVersion]:
    low = high = None
    for part in (s.strip() for s in spec.split(",")):
        if part.startswith(">="):
            low = LooseVersion(part[2:])
        elif part.startswith("<"):
            high = LooseVersion(part[1:])
    assert low is not None and high is not None, f"{spec!r} must have a lower and an upper bound"
    return low, high


def _minor(version: LooseVersion) -> tuple[int, int]:
    return tuple(version.version[:2])


def test_requires_ansible_holds_the_installed_core() -> None:
    low, high = _range(yaml.safe_load((ROOT / "meta/runtime.yml").read_text())["requires_ansible"])
    assert low <= LooseVersion(core_version) < high


def test_execution_environment_pins_the_claimed_minor() -> None:
    claim_low, claim_high = _range(yaml.safe_load((ROOT / "meta/runtime.yml").read_text())["requires_ansible"])
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    pin = ee["dependencies"]["ansible_core"]["package_pip"].removeprefix("ansible-core")
    ee_low, ee_high = _range(pin)
    assert _minor(ee_low) == _minor(claim_low) and _minor(ee_high) == _minor(claim_high)


def test_amazon_aws_range_holds_the_installed_collection() -> None:
    import ansible_collections.amazon.aws.plugins.module_utils.common as aws_common  # pylint: disable=import-outside-toplevel

    wanted = yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]["amazon.aws"]
    low, high = _range(wanted)
    assert low <= LooseVersion(aws_common.AMAZON_AWS_COLLECTION_VERSION) < high
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    (pinned,) = [c["version"] for c in ee["dependencies"]["galaxy"]["collections"] if c["name"] == "amazon.aws"]
    assert _range(pinned) == (low, high)
