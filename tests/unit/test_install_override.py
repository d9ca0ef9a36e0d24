"""InstallOverrideList (spec §3.1): the YAML model and selecting exact versions on a node."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import apt_facts as A
import pytest
import rpm_facts as R

from patchfleet.config.overrides import load_install_override, parse_install_override_text
from patchfleet.domain.install_override import (
    InstallOverrideList,
    OverrideSelection,
    parse_install_override,
    resolve_override,
)
from patchfleet.errors import ConfigError


def lst(*entries: dict[str, Any]) -> InstallOverrideList:
    return parse_install_override({"patches": list(entries)}, "test.yaml")


def picked(resolution: Any) -> dict[str, str]:
    return {f"{s.name}.{s.arch}": s.version for s in resolution.selections}


def test_yaml_with_extra_fields_is_accepted() -> None:
    text = """
patches:
  - id: 'kernel.x86_64'
    severity: Critical       # extra fields are ignored, as AWS does
  - id: 'bind*.x86_64'
    title: '32:9.8.2-0.62.rc1.57.amzn1'
comment: ignored too
"""
    o = parse_install_override_text(text, "o.yaml")
    assert [(p.id, p.title) for p in o.patches] == [
        ("kernel.x86_64", None),
        ("bind*.x86_64", "32:9.8.2-0.62.rc1.57.amzn1"),
    ]


def test_numbers_become_text() -> None:
    o = lst({"id": "pkg.noarch", "title": 1.5})
    assert o.patches[0].title == "1.5"


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        ({}, "patches", "required"),
        ({"patches": [{"title": "1.0"}]}, "patches.0.id", "required"),
        ({"patches": [{"id": "  "}]}, "patches.0.id", "empty"),
        ({"patches": "kernel"}, "patches", "list"),
    ],
)
def test_errors_name_file_and_field(data: Any, field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_install_override(data, "o.yaml")
    assert err.value.source == "o.yaml" and err.value.field == field
    assert fragment in str(err.value)


def test_not_a_mapping_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mapping with a 'patches:'"):
        parse_install_override(["kernel"], "o.yaml")
    with pytest.raises(ConfigError, match="line 1"):
        parse_install_override_text("patches: [", "o.yaml")
    with pytest.raises(ConfigError, match="file not found"):
        load_install_override(tmp_path / "nope.yaml")
    f = tmp_path / "o.yaml"
    f.write_text("patches:\n  - id: kernel.x86_64\n")
    assert load_install_override(f).patches[0].id == "kernel.x86_64"


def test_rpm_name_arch_without_title_takes_newest_available() -> None:
    res = resolve_override(R.rocky(), lst({"id": "kernel.x86_64"}, {"id": "fake-curl*"}))
    assert res.selections == (
        OverrideSelection("fake-curl", "x86_64", "1.0-1", "1.1-1", "fake-curl*"),
        OverrideSelection("kernel", "x86_64", "1.0-1", "1.1-1", "kernel.x86_64"),
    )
    assert res.unmatched == ()


def test_rpm_title_filters_versions_and_picks_newest_match() -> None:
    f = R.facts(
        [R.pkg("bind-libs"), R.pkg("bind-utils"), R.pkg("bind-libs", arch="i686")],
        [R.update("bind-libs", "1.3"), R.update("bind-utils", "1.3")],
        [
            R.advisory("A-1", "security", "Low", R.ref("bind-libs", "1.1"), R.ref("bind-utils")),
            R.advisory("A-2", "security", "Low", R.ref("bind-libs", "1.2")),
        ],
    )
    # AWS example form: the version alone, epoch written.
    assert picked(resolve_override(f, lst({"id": "bind*.x86_64", "title": "0:1.1-*"}))) == {
        "bind-libs.x86_64": "1.1-1",
        "bind-utils.x86_64": "1.1-1",
    }
    # Full form {name}.{arch}:{epoch}:{version}-{release} with wildcards; newest match wins.
    title = "bind-libs.x86_64:0:1.[12]-*"
    assert picked(resolve_override(f, lst({"id": "bind*", "title": title}))) == {
        "bind-libs.x86_64": "1.2-1"
    }
    # The i686 package has no newer version: not selected; the wrong title selects nothing.
    res = resolve_override(f, lst({"id": "bind-libs.i686"}, {"id": "bind*", "title": "9:*"}))
    assert res.selections == () and res.unmatched == ("bind-libs.i686", "bind* 9:*")


def test_rpm_epochs() -> None:
    f = R.facts(
        [R.pkg("bind", "32:9.8.2-0.1")],
        [R.update("bind", "9.8.2", "0.62", installed="32:9.8.2-0.1")],
    )
    # update() builds epoch 0, below the installed epoch 32: not newer, nothing to install.
    assert resolve_override(f, lst({"id": "bind.x86_64"})).selections == ()
    up = R.update("bind", "9.8.2", "0.62")
    f = replace(f, updates=(replace(up, package=replace(up.package, epoch=32)),))
    title = "32:9.8.2-0.62*"
    assert picked(resolve_override(f, lst({"id": "bind.x86_64", "title": title}))) == {
        "bind.x86_64": "32:9.8.2-0.62"
    }


def test_zypper_uses_same_rules() -> None:
    assert picked(resolve_override(R.sles(), lst({"id": "kernel-default.x86_64"}))) == {
        "kernel-default.x86_64": "1.1-1"
    }


def test_apt_without_title_takes_candidate() -> None:
    res = resolve_override(A.mixed(), lst({"id": "openssl.amd64"}, {"id": "bash"}, {"id": "vim*"}))
    assert picked(res) == {"openssl.amd64": "3.0.13-1~deb12u1", "bash.amd64": "5.2.15-2+b7"}
    assert res.unmatched == ("vim*",)  # nothing newer


def test_apt_title_selects_a_non_candidate_version() -> None:
    o = lst({"id": "openssl.amd64", "title": "openssl.amd64:3.0.11-*"})
    assert picked(resolve_override(A.mixed(), o)) == {"openssl.amd64": "3.0.11-1~deb12u2"}
    o = lst({"id": "openssl*", "title": "*deb12u2"})
    assert picked(resolve_override(A.mixed(), o)) == {"openssl.amd64": "3.0.11-1~deb12u2"}


def test_apt_ignores_not_installed_and_first_entry_wins() -> None:
    o = lst(
        {"id": "openssl.amd64", "title": "*deb12u2"},
        {"id": "openssl.amd64"},
        {"id": "nano"},  # config-files only: not installed
    )
    res = resolve_override(A.mixed(), o)
    assert picked(res) == {"openssl.amd64": "3.0.11-1~deb12u2"}
    assert res.selections[0].title == "*deb12u2"
    assert res.unmatched == ("nano",)
