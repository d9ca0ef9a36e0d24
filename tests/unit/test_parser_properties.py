"""Property tests (hypothesis): whatever text a node or a file hands them, the parsers and the
loaders raise only patchfleet's typed errors (ParseError / NodeError for node output, ConfigError
for files), never a bare ValueError, IndexError or RecursionError (issue 13).

Inputs are random text and random mutations of the real captured outputs in tests/golden, so
the parsers are pushed past their first line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchfleet.config.ansible_inventory import parse_ansible_ini
from patchfleet.config.yaml_loader import parse_yaml
from patchfleet.domain.baseline import parse_baseline
from patchfleet.domain.inventory import parse_inventory
from patchfleet.domain.windows import parse_schedule
from patchfleet.errors import ConfigError, NodeError
from patchfleet.parsers import apt, boot, dnf, dpkg, os_release, reboot, restarts, rpm, zypper

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_RELEASES = apt.parse_policy_releases(
    (GOLDEN / "apt" / "debian12-host" / "apt-cache-policy.stdout").read_text())
NODE_PARSERS: dict[str, Callable[[str], Any]] = {
    "dpkg-query": dpkg.parse_dpkg_query,
    "apt-cache-policy": apt.parse_policy_releases,
    "apt-cache-policy-installed": lambda t: apt.parse_policy_packages(t, _RELEASES),
    "apt-get-simulate": apt.parse_simulate,
    "apt-cache-show": apt.parse_apt_show,
    "apt-reboot": reboot.parse_apt_reboot,
    "os-release": lambda t: os_release.os_info(os_release.parse_os_release(t)),
    "rpm-query": rpm.parse_rpm_query,
    "rpm-boot": boot.parse_boot,
    "dnf-updateinfo-list": dnf.parse_updateinfo_list,
    "dnf-updateinfo-info": dnf.parse_updateinfo_info,
    "zypper-list-updates": zypper.parse_list_updates,
    "zypper-list-patches": zypper.parse_list_patches,
    "zypper-patch-info": zypper.parse_patch_info,
    "restart-proc-maps": restarts.parse_proc_maps,
    "needrestart-batch": restarts.parse_needrestart,
    "auto-updaters": restarts.parse_auto_updaters,
}


def _captures(name: str) -> list[str]:
    return [p.read_text(errors="replace") for p in sorted(GOLDEN.glob(f"*/*/{name}.stdout"))][:3]


def _mutated(samples: list[str]) -> st.SearchStrategy[str]:
    """A real capture with a random slice replaced by random text (or random text alone)."""
    if not samples:
        return st.text(max_size=400)

    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        base = draw(st.sampled_from(samples))
        i = draw(st.integers(0, len(base)))
        j = draw(st.integers(i, min(len(base), i + 200)))
        return base[:i] + draw(st.text(max_size=60)) + base[j:]

    return st.one_of(mutate(), st.text(max_size=400))


@pytest.mark.parametrize("name", sorted(NODE_PARSERS))
def test_node_output_parsers_raise_only_typed_errors(name: str) -> None:
    parse = NODE_PARSERS[name]

    @SETTINGS
    @given(_mutated(_captures(name)))
    def check(text: str) -> None:
        with contextlib.suppress(NodeError):
            parse(text)

    check()


LOADERS: dict[str, Callable[[Any], Any]] = {
    "inventory": lambda d: parse_inventory(d, "inv.yaml"),
    "baseline": lambda d: parse_baseline(d, "b.yaml"),
}
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "nodes", "id", "host", "port", "user", "defaults", "tags",
                         "operating_system", "approval_rules", "patch_filters", "key",
                         "values", "patch_groups", "os", "approve_after_days"]) | st.text(
            max_size=8), inner, max_size=5),
    max_leaves=20)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_file_models_raise_only_config_errors(name: str) -> None:
    load = LOADERS[name]

    @SETTINGS
    @given(_json)
    def check(data: Any) -> None:
        with contextlib.suppress(ConfigError):
            load(data)

    check()


@SETTINGS
@given(st.text(max_size=300))
def test_yaml_ini_and_schedules_raise_only_config_errors(text: str) -> None:
    for parse in (lambda t: parse_yaml(t, "f.yaml"), lambda t: parse_ansible_ini(t, "hosts"),
                  lambda t: parse_schedule(t, "schedule"),
                  lambda t: parse_schedule(f"cron({t})", "schedule"),
                  lambda t: parse_schedule(f"rate({t})", "schedule")):
        with contextlib.suppress(ConfigError):
            parse(text)
