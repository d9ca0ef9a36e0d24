"""Baseline model, YAML loading and its error messages, registry/selection, AWS JSON round trips."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from patchfleet.config.baselines import (
    embedded_baselines_dir,
    load_aws_json_file,
    load_baseline,
    load_baselines,
    select_baseline,
    to_yaml_data,
)
from patchfleet.domain.baseline import (
    PREDEFINED_DEFAULTS,
    Baseline,
    BaselineRegistry,
    OperatingSystem,
    OsFamily,
    os_family,
    parse_baseline,
)
from patchfleet.domain.baseline_aws import (
    baseline_from_aws_json,
    baselines_from_aws_json,
    to_aws_json,
)
from patchfleet.domain.records import ComplianceLevel
from patchfleet.errors import ConfigError, UnknownBaselineError

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "cases" / "baselines"
INVALID = CASES / "invalid"
AWS = CASES / "aws"
IGNORED_AWS_KEYS = {"BaselineId", "CreatedDate", "ModifiedDate", "PatchGroups"}

SHIPPED = {
    "AWS-DebianDefaultPatchBaseline": "DEBIAN",
    "AWS-UbuntuDefaultPatchBaseline": "UBUNTU",
    "AWS-DefaultRaspbianPatchBaseline": "RASPBIAN",
    "AWS-AmazonLinuxDefaultPatchBaseline": "AMAZON_LINUX",
    "AWS-AmazonLinux2DefaultPatchBaseline": "AMAZON_LINUX_2",
    "AWS-AmazonLinux2022DefaultPatchBaseline": "AMAZON_LINUX_2022",
    "AWS-AmazonLinux2023DefaultPatchBaseline": "AMAZON_LINUX_2023",
    "AWS-RedHatDefaultPatchBaseline": "REDHAT_ENTERPRISE_LINUX",
    "AWS-RockyLinuxDefaultPatchBaseline": "ROCKY_LINUX",
    "AWS-AlmaLinuxDefaultPatchBaseline": "ALMA_LINUX",
    "AWS-OracleLinuxDefaultPatchBaseline": "ORACLE_LINUX",
    "AWS-CentOSDefaultPatchBaseline": "CENTOS",
    "AWS-SuseDefaultPatchBaseline": "SUSE",
}


def make(**fields: Any) -> Baseline:
    data: dict[str, Any] = {"name": "test-baseline", "operating_system": "DEBIAN"}
    data.update(fields)
    return parse_baseline(data, "test")


@pytest.fixture(scope="module")
def registry() -> BaselineRegistry:
    return load_baselines(embedded_baselines_dir())


# --- shipped baselines ----------------------------------------------------------------------


def test_embedded_dir_is_the_repo_folder_when_running_from_source() -> None:
    assert embedded_baselines_dir() == REPO / "baselines"


def test_every_predefined_baseline_is_shipped(registry: BaselineRegistry) -> None:
    for name, os_name in SHIPPED.items():
        b = registry.get(name)
        assert b.operating_system == os_name
        assert b.predefined
        assert registry.default_for(os_name) is b
        assert PREDEFINED_DEFAULTS[OperatingSystem(os_name)] == name
        # Predefined baselines give every patch the level UNSPECIFIED.
        assert all(r.compliance_level is ComplianceLevel.UNSPECIFIED for r in b.approval_rules)
        assert b.approved_patches_compliance_level is ComplianceLevel.UNSPECIFIED
    assert not registry.get("example-debian-all-updates").predefined


def test_files_are_named_after_their_baseline() -> None:
    for f in embedded_baselines_dir().glob("*.yaml"):
        assert load_baseline(f).name == f.stem


@pytest.mark.parametrize(
    "name",
    [
        "AWS-DebianDefaultPatchBaseline",
        "AWS-UbuntuDefaultPatchBaseline",
        "AWS-DefaultRaspbianPatchBaseline",
    ],
)
def test_apt_defaults_approve_security_updates_of_every_priority_at_once(
    registry: BaselineRegistry, name: str
) -> None:
    b = registry.get(name)
    assert b.family is OsFamily.APT
    assert b.global_filters == ()
    (rule,) = b.approval_rules
    assert [(f.key, f.values) for f in rule.patch_filters] == [
        ("PRIORITY", ("Required", "Important", "Standard", "Optional", "Extra"))
    ]
    assert rule.enable_non_security is False
    assert rule.approve_after_days is None and rule.approve_until_date is None


def test_yum_defaults_match_the_aws_table(registry: BaselineRegistry) -> None:
    def rules(name: str) -> list[tuple[dict[str, tuple[str, ...]], int | None, bool]]:
        return [
            (
                {f.key: f.values for f in r.patch_filters},
                r.approve_after_days,
                r.enable_non_security,
            )
            for r in registry.get(name).approval_rules
        ]

    security_and_bugfix = [
        ({"CLASSIFICATION": ("Security",), "SEVERITY": ("Critical", "Important")}, 7, False),
        ({"CLASSIFICATION": ("Bugfix",)}, 7, False),
    ]
    for name in (
        "AWS-AmazonLinux2DefaultPatchBaseline",
        "AWS-AmazonLinux2023DefaultPatchBaseline",
        "AWS-RedHatDefaultPatchBaseline",
        "AWS-RockyLinuxDefaultPatchBaseline",
        "AWS-AlmaLinuxDefaultPatchBaseline",
    ):
        assert rules(name) == security_and_bugfix, name
    assert rules("AWS-OracleLinuxDefaultPatchBaseline") == [
        ({"CLASSIFICATION": ("Security",), "SEVERITY": ("Important", "Moderate")}, 7, False),
        ({"CLASSIFICATION": ("Bugfix",)}, 7, False),
    ]
    assert rules("AWS-SuseDefaultPatchBaseline") == [security_and_bugfix[0]]
    assert rules("AWS-CentOSDefaultPatchBaseline") == [({"CLASSIFICATION": ("*",)}, 7, True)]


def test_example_custom_baseline(registry: BaselineRegistry) -> None:
    b = registry.get("example-debian-all-updates")
    assert b.approval_rules[0].enable_non_security
    assert b.approval_rules[0].compliance_level is ComplianceLevel.HIGH


def test_shipped_yaml_round_trips(registry: BaselineRegistry) -> None:
    for f in embedded_baselines_dir().glob("*.yaml"):
        data = yaml.safe_load(f.read_text())
        b = load_baseline(f)
        assert to_yaml_data(b) == data, f.name
        assert parse_baseline(yaml.safe_load(yaml.safe_dump(to_yaml_data(b))), "x") == b


def test_yaml_round_trip_keeps_dates_as_strings() -> None:
    b = make(
        operating_system="ROCKY_LINUX",
        approval_rules=[
            {
                "patch_filters": [{"key": "CLASSIFICATION", "values": ["Security"]}],
                "approve_until_date": "2026-01-31",
            }
        ],
    )
    data = to_yaml_data(b)
    assert data["approval_rules"][0]["approve_until_date"] == "2026-01-31"
    assert parse_baseline(yaml.safe_load(yaml.safe_dump(data)), "x") == b


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "field", "fragment"),
    [
        ("unknown-key.yaml", "approval_rules.0.enable_nonsecurity", "did you mean"),
        ("camel-case-key.yaml", "ApprovedPatches", "write 'approved_patches'"),
        ("bad-enum.yaml", "approved_patches_compliance_level", "'URGENT' is not allowed"),
        ("bad-os.yaml", "operating_system", "'DEBIAN_LINUX' is not allowed; use one of"),
        (
            "bad-filter-key.yaml",
            "approval_rules.0.patch_filters.0.key",
            "'PRIORTY' is not a filter key for DEBIAN; use one of PRODUCT, PRIORITY, SECTION",
        ),
        (
            "filter-key-of-other-os.yaml",
            "global_filters.0.key",
            "'CLASSIFICATION' is not a filter key for UBUNTU",
        ),
        (
            "bad-filter-value.yaml",
            "approval_rules.0.patch_filters.1.values.1",
            "'Medium' is not a SEVERITY value for REDHAT_ENTERPRISE_LINUX; use one of Critical, "
            "Important, Moderate, Low",
        ),
        ("both-delays.yaml", "approval_rules.0", "keep only one of them"),
        ("too-many-rules.yaml", "approval_rules", "at most 10"),
        ("too-many-filters.yaml", "global_filters", "at most 4"),
        ("duplicate-filter-key.yaml", "global_filters.1.key", "SECTION appears twice"),
        ("bad-name.yaml", "name", "'my baseline!' is not a valid baseline name"),
        ("missing-name.yaml", "name", "required field is missing"),
        ("bad-date.yaml", "approval_rules.0.approve_until_date", "write it as YYYY-MM-DD"),
        ("days-out-of-range.yaml", "approval_rules.0.approve_after_days", "360"),
        ("apt-patch-with-version.yaml", "approved_patches.1", "not a bare package name"),
        (
            "windows-only-field.yaml",
            "available_security_updates_compliance_status",
            "WINDOWS baselines only",
        ),
    ],
)
def test_invalid_baselines_name_file_and_field(file: str, field: str, fragment: str) -> None:
    path = INVALID / file
    with pytest.raises(ConfigError) as info:
        load_baseline(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {field}: "), message
    assert fragment in message, message
    assert info.value.source == str(path)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("file", "fragment"),
    [
        ("yaml-syntax.yaml", "not valid YAML at line 5"),
        ("duplicate-yaml-key.yaml", "duplicate key 'rejected_patches'"),
        ("not-a-mapping.yaml", "must be a mapping"),
        ("empty.yaml", "the file is empty"),
        ("no-such-file.yaml", "file not found"),
    ],
)
def test_unreadable_baseline_files_name_the_file(file: str, fragment: str) -> None:
    path = INVALID / file
    with pytest.raises(ConfigError) as info:
        load_baseline(path)
    assert str(info.value).startswith(f"{path}: ")
    assert fragment in str(info.value)


def test_several_problems_are_all_reported() -> None:
    with pytest.raises(ConfigError) as info:
        make(
            global_filters=[{"key": "SEVERITY", "values": ["Critical"]}],
            approval_rules=[{"patch_filters": [{"key": "PRIORITY", "values": ["Urgent"]}]}],
        )
    message = str(info.value)
    assert "global_filters.0.key: 'SEVERITY' is not a filter key for DEBIAN" in message
    assert "approval_rules.0.patch_filters.0.values.0: 'Urgent' is not a PRIORITY value" in message


def test_filter_values_are_case_insensitive_and_take_wildcards() -> None:
    b = make(
        approval_rules=[
            {
                "patch_filters": [
                    {"key": "PRIORITY", "values": ["required", "Imp*", "*"]},
                    {"key": "SECTION", "values": ["contrib/net"]},
                    {"key": "PRODUCT", "values": ["Debian*"]},
                ]
            }
        ]
    )
    assert b.approval_rules[0].patch_filters[0].values == ("required", "Imp*", "*")
    with pytest.raises(ConfigError, match="'Zz\\*' is not a PRIORITY value"):
        make(approval_rules=[{"patch_filters": [{"key": "PRIORITY", "values": ["Zz*"]}]}])


def test_section_values_are_free_text_of_at_most_64_chars() -> None:
    make(global_filters=[{"key": "SECTION", "values": ["anything-goes"]}])
    with pytest.raises(ConfigError, match="at most 64 characters"):
        make(global_filters=[{"key": "SECTION", "values": ["x" * 65]}])


def test_apt_accepts_delays_as_a_patchfleet_extension() -> None:
    b = make(approval_rules=[{"approve_after_days": 7}, {"approve_until_date": "2026-01-31"}])
    assert b.approval_rules[0].approve_after_days == 7
    assert str(b.approval_rules[1].approve_until_date) == "2026-01-31"


def test_limits() -> None:
    make(approved_patches=[f"pkg{i}" for i in range(50)])
    with pytest.raises(ConfigError, match="approved_patches"):
        make(approved_patches=[f"pkg{i}" for i in range(51)])
    with pytest.raises(ConfigError, match=re.escape("rejected_patches.0")):
        make(rejected_patches=["x" * 101])
    with pytest.raises(ConfigError, match="description"):
        make(description="x" * 1025)
    with pytest.raises(ConfigError, match=re.escape("approval_rules.0.approve_after_days")):
        make(approval_rules=[{"approve_after_days": True}])


def test_yum_patch_name_rules() -> None:
    rocky = {"operating_system": "ROCKY_LINUX"}
    make(**rocky, approved_patches=["RHSA-2024:1234", "CVE-2024-3094", "1234567", "kernel-*"])
    with pytest.raises(ConfigError, match="more than one"):
        make(**rocky, approved_patches=["kernel-*-*.x86_64"])
    with pytest.raises(
        ConfigError, match=re.escape("rejected_patches.0: 'CVE-2024-3094' looks like")
    ):
        make(**rocky, rejected_patches=["CVE-2024-3094"])


def test_os_family() -> None:
    assert os_family("UBUNTU") is OsFamily.APT
    assert os_family(OperatingSystem.ALMA_LINUX) is OsFamily.YUM
    assert os_family("SUSE") is OsFamily.SUSE


def test_model_is_immutable() -> None:
    b = make()
    with pytest.raises(ValueError):
        b.name = "other"  # type: ignore[misc]


# --- registry and selection -----------------------------------------------------------------


def test_duplicate_names_in_a_folder_name_both_files() -> None:
    with pytest.raises(ConfigError) as info:
        load_baselines(CASES / "duplicate")
    message = str(info.value)
    assert "one.yaml" in message and "two.yaml" in message and "'same-name'" in message


def test_load_baselines_needs_a_folder() -> None:
    with pytest.raises(ConfigError, match="is not a folder"):
        load_baselines(CASES / "nope")


def test_unknown_name_lists_known_baselines(registry: BaselineRegistry) -> None:
    with pytest.raises(UnknownBaselineError) as info:
        registry.get("AWS-DebianDefaultPatchBaselin")
    message = str(info.value)
    assert "did you mean 'AWS-DebianDefaultPatchBaseline'" in message
    assert "example-debian-all-updates" in message


def test_select_order(registry: BaselineRegistry) -> None:
    groups = {"web": {"DEBIAN": "example-debian-all-updates"}}
    debian_default = registry.get("AWS-DebianDefaultPatchBaseline")
    example = registry.get("example-debian-all-updates")
    # OS default
    assert registry.select("DEBIAN", None, groups) is debian_default
    # patch group beats the default
    assert registry.select("DEBIAN", "web", groups) is example
    # an unknown group, or a group without this OS, falls back to the default
    assert registry.select("DEBIAN", "db", groups) is debian_default
    ubuntu = registry.select("UBUNTU", "web", groups)
    assert ubuntu.name == "AWS-UbuntuDefaultPatchBaseline"
    # an explicit baseline beats the patch group
    assert (
        registry.select("DEBIAN", "web", groups, explicit="AWS-DebianDefaultPatchBaseline")
        is debian_default
    )
    assert registry.select("DEBIAN", "web", groups, explicit=example) is example


def test_select_patch_group_with_unknown_baseline(registry: BaselineRegistry) -> None:
    with pytest.raises(UnknownBaselineError, match="known baselines: AWS-"):
        registry.select("DEBIAN", "web", {"web": {"DEBIAN": "no-such-baseline"}})


def test_select_patch_group_mapped_to_another_os(registry: BaselineRegistry) -> None:
    with pytest.raises(ConfigError, match="a UBUNTU baseline"):
        registry.select("DEBIAN", "web", {"web": {"DEBIAN": "AWS-UbuntuDefaultPatchBaseline"}})


def test_select_explicit_files(registry: BaselineRegistry) -> None:
    path = embedded_baselines_dir() / "example-debian-all-updates.yaml"
    assert select_baseline(registry, "DEBIAN", None, explicit=str(path)).name == (
        "example-debian-all-updates"
    )
    override = AWS / "override.json"
    assert select_baseline(registry, "DEBIAN", None, explicit=override).name == "override-debian"
    assert (
        select_baseline(registry, "AMAZON_LINUX_2023", None, explicit=str(override)).name
        == "override-al2023"
    )
    # An override array without this OS falls through to the usual selection.
    assert select_baseline(registry, "UBUNTU", None, explicit=override).name == (
        "AWS-UbuntuDefaultPatchBaseline"
    )
    # A single file of another OS names the file.
    with pytest.raises(ConfigError, match="is for DEBIAN but the node runs UBUNTU") as info:
        select_baseline(registry, "UBUNTU", None, explicit=str(path))
    assert info.value.source == str(path)


def test_select_explicit_errors(registry: BaselineRegistry) -> None:
    with pytest.raises(ConfigError, match="is for DEBIAN but the node runs UBUNTU"):
        registry.select("UBUNTU", None, explicit="example-debian-all-updates")
    with pytest.raises(UnknownBaselineError, match="known baselines"):
        registry.select("DEBIAN", None, explicit="no-such-baseline")
    with pytest.raises(UnknownBaselineError, match="known baselines"):
        select_baseline(registry, "DEBIAN", None, explicit="no-such-baseline")
    with pytest.raises(ConfigError, match="file not found"):
        select_baseline(registry, "DEBIAN", None, explicit="missing/baseline.yaml")
    with pytest.raises(UnknownBaselineError, match="not an operating system"):
        registry.select("PLAN9", None)


def test_default_for_an_os_without_a_loaded_default() -> None:
    with pytest.raises(UnknownBaselineError, match="no default baseline for DEBIAN"):
        BaselineRegistry().default_for("DEBIAN")


def test_merged_and_custom_default(registry: BaselineRegistry) -> None:
    mine = make(name="AWS-DebianDefaultPatchBaseline", description="local copy")
    merged = registry.merged(BaselineRegistry([(mine, "mine.yaml")]))
    assert merged.get("AWS-DebianDefaultPatchBaseline").description == "local copy"
    assert merged.source("AWS-DebianDefaultPatchBaseline") == "mine.yaml"
    assert len(merged) == len(registry)
    with pytest.raises(ConfigError, match="defined twice"):
        registry.merged(BaselineRegistry([(mine, "mine.yaml")]), replace=False)
    custom = registry.with_default("DEBIAN", "example-debian-all-updates")
    assert custom.default_for("DEBIAN").name == "example-debian-all-updates"
    assert custom.select("DEBIAN", None).name == "example-debian-all-updates"
    with pytest.raises(ConfigError, match="is for DEBIAN, not UBUNTU"):
        registry.with_default("UBUNTU", "example-debian-all-updates")


# --- AWS JSON -------------------------------------------------------------------------------


def _without_ignored(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in IGNORED_AWS_KEYS}


@pytest.mark.parametrize("file", ["ubuntu-custom.json", "rhel-custom.json"])
def test_aws_json_round_trip(file: str) -> None:
    data = json.loads((AWS / file).read_text())
    (b,) = load_aws_json_file(AWS / file)
    assert to_aws_json(b) == _without_ignored(data)
    assert json.loads(json.dumps(to_aws_json(b))) == _without_ignored(data)
    # And through YAML as well.
    again = parse_baseline(yaml.safe_load(yaml.safe_dump(to_yaml_data(b))), "x")
    assert again == b
    assert to_aws_json(again) == _without_ignored(data)


def test_aws_json_fields_land_in_the_model() -> None:
    (b,) = load_aws_json_file(AWS / "ubuntu-custom.json")
    assert b.name == "ubuntu-web-servers"
    assert b.operating_system is OperatingSystem.UBUNTU
    assert b.global_filters[0].values == ("Ubuntu22.04", "Ubuntu24.04")
    assert b.approval_rules[1].compliance_level is ComplianceLevel.CRITICAL
    assert b.approved_patches_enable_non_security is True
    assert b.rejected_patches_action.value == "BLOCK"
    assert b.sources[0].name == "jammy-mirror"
    (rhel,) = load_aws_json_file(AWS / "rhel-custom.json")
    assert rhel.approval_rules[0].approve_after_days == 3
    assert str(rhel.approval_rules[1].approve_until_date) == "2026-01-31"


def test_baseline_override_array_round_trips() -> None:
    data = json.loads((AWS / "override.json").read_text())
    baselines = load_aws_json_file(AWS / "override.json")
    assert [b.operating_system.value for b in baselines] == ["DEBIAN", "AMAZON_LINUX_2023"]
    assert [to_aws_json(b) for b in baselines] == data


def test_override_array_with_two_baselines_for_one_os() -> None:
    data = json.loads((AWS / "override.json").read_text())
    data.append(dict(data[0], Name="another-debian"))
    with pytest.raises(ConfigError) as info:
        baselines_from_aws_json(data, "override.json")
    assert "entries 0 and 2 are both for DEBIAN" in str(info.value)
    assert info.value.field == "[2].OperatingSystem"


def test_baseline_id_becomes_the_name_when_name_is_missing() -> None:
    data = json.loads((AWS / "rhel-custom.json").read_text())
    del data["Name"]
    assert baseline_from_aws_json(data).name == "pb-0123456789abcdef0"


def test_missing_operating_system_is_windows_as_in_aws() -> None:
    assert baseline_from_aws_json({"Name": "win-default"}).operating_system is (
        OperatingSystem.WINDOWS
    )


def test_aws_json_errors_use_aws_paths() -> None:
    data = json.loads((AWS / "ubuntu-custom.json").read_text())
    bad = copy.deepcopy(data)
    bad["ApprovalRules"]["PatchRules"][0]["PatchFilterGroup"]["PatchFilters"][0]["Key"] = "SEVERITY"
    with pytest.raises(ConfigError) as info:
        baseline_from_aws_json(bad, "in.json")
    assert str(info.value).startswith(
        "in.json: ApprovalRules.PatchRules.0.PatchFilterGroup.PatchFilters.0.Key: 'SEVERITY' is "
        "not a filter key for UBUNTU"
    )
    bad = copy.deepcopy(data)
    bad["ApprovalRules"]["PatchRules"][1]["ApproveAfterDay"] = 3
    with pytest.raises(ConfigError) as info:
        baseline_from_aws_json(bad, "in.json")
    assert info.value.field == "ApprovalRules.PatchRules.1.ApproveAfterDay"
    assert "unknown key" in str(info.value)
    bad = copy.deepcopy(data)
    bad["RejectedPatchesAction"] = "DROP"
    with pytest.raises(
        ConfigError, match=re.escape("in.json: RejectedPatchesAction: 'DROP' is not allowed")
    ):
        baseline_from_aws_json(bad, "in.json")
    with pytest.raises(ConfigError, match=r"\[1\]\.Name: required field is missing"):
        baselines_from_aws_json([data, {"OperatingSystem": "DEBIAN"}], "in.json")


def test_aws_json_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"Name": ')
    with pytest.raises(ConfigError, match=r"bad.json: not valid JSON at line 1"):
        load_aws_json_file(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_aws_json_file(tmp_path / "none.json")
    scalar = tmp_path / "scalar.json"
    scalar.write_text("3")
    with pytest.raises(ConfigError, match="expected a get-patch-baseline JSON object"):
        load_aws_json_file(scalar)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match=r"deep\.json: JSON nested too deeply"):
        load_aws_json_file(deep)


def test_tags_and_nulls() -> None:
    b = baseline_from_aws_json(
        {
            "Name": "tagged",
            "OperatingSystem": "DEBIAN",
            "Description": None,
            "Tags": [{"Key": "team", "Value": "sre"}, {"Key": "env", "Value": "prod"}],
        }
    )
    assert b.tags == {"team": "sre", "env": "prod"}
    assert b.description is None
    assert to_aws_json(b)["Tags"] == [
        {"Key": "team", "Value": "sre"},
        {"Key": "env", "Value": "prod"},
    ]


def test_exported_yaml_baseline_is_loadable(tmp_path: Path) -> None:
    (b,) = load_aws_json_file(AWS / "ubuntu-custom.json")
    path = tmp_path / f"{b.name}.yaml"
    path.write_text(yaml.safe_dump(to_yaml_data(b), sort_keys=False))
    assert load_baseline(path) == b
    assert load_baselines(tmp_path).get(b.name) == b


@pytest.mark.parametrize("value", ["CVE-2025-1001", "cve-2024-12345", "1234567"])
def test_a_suse_rejected_list_refuses_cve_and_bugzilla_ids(value: str) -> None:
    """AWS takes package names and patch ids there only; a CVE id was silently dropped."""
    with pytest.raises(ConfigError, match="is a CVE or Bugzilla ID; a SUSE rejected_patches"):
        parse_baseline({"name": "suse-rejects", "operating_system": "SUSE",
                        "rejected_patches": [value]}, "suse.yaml")
    assert parse_baseline({"name": "suse-rejects", "operating_system": "SUSE",
                           "rejected_patches": ["SUSE-SLE-Module-Basesystem-15-SP6-2025-1234",
                                                "telnet*"]}, "suse.yaml")
