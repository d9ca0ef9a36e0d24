"""Every golden capture was made with the command its probe sends today.

``<probe>.cmd`` beside each capture records the exact string sent to the node. The capture
scripts (``testnodes/capture_golden.py``, ``tests/golden/post/capture.py``) build their commands
from the package managers' probes; here the same functions rebuild them, so a probe whose
command changed without a re-capture fails (its parsers would be tested on output of an older
command). Re-capture with those scripts; see tests/golden/<manager>/README.md.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
sys.path.insert(0, str(GOLDEN))
sys.path.insert(0, str(ROOT / "testnodes"))
import capture_golden  # noqa: E402
import parse_golden  # noqa: E402

from patchfleet.domain.baseline import PatchSource  # noqa: E402
from patchfleet.managers import apt, dnf, sources, zypper  # noqa: E402
from patchfleet.managers.base import PackageSpec  # noqa: E402


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


post_capture = _load(GOLDEN / "post" / "capture.py", "golden_post_capture")

HOST_CASES = {
    "debian12-host": "apt-get-update",
    "debian12-host-autoremove": "apt-get-simulate",
}
"""Cases captured on a real Debian 12 host, not on a test node (no capture_golden case), with
one probe each that is sure to be there."""

CAPTURED_BEFORE_TZ_UTC = {"apt/debian12-host"}
"""The one documented exception (tests/golden/apt/README.md): captured on a real host, which no
test node can reproduce, before every command got ``TZ=UTC`` (commit 280100d). Its .cmd files
record what was sent then; they may differ from today's commands by exactly that."""


def _as_sent(case: Path, command: str) -> str:
    """``command`` as it was sent when ``case`` was captured (today's, but for the exception)."""
    if f"{case.parent.name}/{case.name}" in CAPTURED_BEFORE_TZ_UTC:
        return command.replace(" TZ=UTC ", " ", 1)
    return command


def _recorded(case: Path) -> dict[str, str]:
    return {f.name[: -len(".cmd")]: f.read_text().removesuffix("\n")
            for f in case.glob("*.cmd")}


def _captured(case: Path) -> set[str]:
    return {f.name[: -len(".stdout")] for f in case.glob("*.stdout")}


def _arguments(case: Path, recorded: dict[str, str]) -> dict[str, list[str]]:
    """The words each argument-taking probe was sent with, read back from its .cmd."""
    args = {}
    for probe in parse_golden.support_of(case).probes:
        if probe.build is None or probe.name not in recorded:
            continue
        bare = _as_sent(case, probe.command.render(sudo=False)) + " "
        assert recorded[probe.name].startswith(bare), (
            f"{case.name}/{probe.name}.cmd does not start with today's command {bare!r}")
        args[probe.name] = shlex.split(recorded[probe.name][len(bare):])
    return args


def _expected(case: Path, recorded: dict[str, str]) -> dict[str, str]:
    spec = next((c for c in capture_golden.CASES if c.name == case.name), None)
    if spec is None:
        assert case.name in HOST_CASES, f"{case}: no capture_golden case of that name"
        spec = capture_golden.Case(case.name, chain="", variant="default")
    commands = capture_golden.case_commands(spec, _arguments(case, recorded))
    return {c.name: _as_sent(case, c.render(sudo=False)) for c in commands}


SCAN_CASES = parse_golden.cases()
POST_CASES = sorted(p for p in (GOLDEN / "post").iterdir() if p.is_dir())


def test_every_capture_folder_is_known() -> None:
    names = {c.name for c in capture_golden.CASES} | set(HOST_CASES)
    assert {c.name for c in SCAN_CASES} <= names
    assert {c.name for c in POST_CASES} == {c[0] for c in post_capture.CASES}


@pytest.mark.parametrize("case", SCAN_CASES, ids=[f"{c.parent.name}/{c.name}" for c in SCAN_CASES])
def test_scan_capture_commands_are_todays(case: Path) -> None:
    recorded = _recorded(case)
    assert set(recorded) == _captured(case), f"{case}: every capture needs its .cmd"
    expected = _expected(case, recorded)
    if case.name in HOST_CASES:
        assert HOST_CASES[case.name] in recorded
        expected = {name: cmd for name, cmd in expected.items() if name in recorded}
    else:
        assert set(recorded) == set(expected), f"{case}: captured probes differ from the scan's"
    for name, command in expected.items():
        assert recorded[name] == command, (
            f"{case.parent.name}/{case.name}/{name}.cmd is not the command the probe sends "
            "today: re-capture with testnodes/capture_golden.py")


@pytest.mark.parametrize("case", POST_CASES, ids=[c.name for c in POST_CASES])
def test_post_install_capture_commands_are_todays(case: Path) -> None:
    variant = next(c[2] for c in post_capture.CASES if c[0] == case.name)
    expected = {c.name: c.render(sudo=False) for c in post_capture.case_commands(variant)}
    recorded = _recorded(case)
    assert set(recorded) == _captured(case) == set(expected)
    for name, command in expected.items():
        assert recorded[name] == command, (
            f"post/{case.name}/{name}.cmd is not the command the probe sends today: "
            "re-capture with tests/golden/post/capture.py")


# ---------------------------------------------------------------------------------------------
# a baseline's alternative source: the same probes, pointed at the source's directory
# ---------------------------------------------------------------------------------------------

SOURCE_DIR = "/var/tmp/patchfleet-source.AbCdEf1234"
APT_DIR_OPTIONS = (
    f"-o Dir::Etc::SourceList={SOURCE_DIR}/sources.list "
    f"-o Dir::Etc::SourceParts={SOURCE_DIR}/parts -o Dir::State::Lists={SOURCE_DIR}/lists "
    "-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= "
    f"-o Dir::Cache::archives={SOURCE_DIR}/archives"
)
ENV = ("env LC_ALL=C LANG=C LANGUAGE=C DEBIAN_FRONTEND=noninteractive "
       "APT_LISTCHANGES_FRONTEND=none NEEDRESTART_SUSPEND=1 COLUMNS=1000 TZ=UTC")
APT_ENV = f"{ENV} APT_CONFIG={SOURCE_DIR}/apt.conf"
DNF_DIR_OPTIONS = (f"--setopt=reposdir={SOURCE_DIR}/repos.d "
                   f"--setopt=cachedir={SOURCE_DIR}/cache "
                   "--disableplugin=generate_completion_cache")
ZYPPER_DIR_OPTIONS = f"--reposd-dir {SOURCE_DIR}/repos.d --cache-dir {SOURCE_DIR}/cache"
SPEC = PackageSpec("fake-app", "noarch", "1.1-1")
DEB_SPEC = PackageSpec("fake-app", "all", "1.1")

# manager -> probe -> the command a sourced scan sends, rendered (without sudo); probes not
# listed are sent unchanged (they never read repositories).
SOURCED_PROBES: dict[str, dict[str, str]] = {
    "apt": {
        "apt-get-update": f"{APT_ENV} apt-get {APT_DIR_OPTIONS} -q -o DPkg::Lock::Timeout=60 "
                          "update",
        "apt-cache-policy": f"{APT_ENV} apt-cache {APT_DIR_OPTIONS} policy",
        "apt-cache-policy-installed": (
            f"{ENV} sh -c 'dpkg-query -W -f '\"'\"'${{db:Status-Status}} ${{binary:Package}}\\n"
            "'\"'\"' | awk '\"'\"'$1 == \"installed\" { print $2 }'\"'\"' | xargs -r apt-cache "
            f"\"$@\" policy' patchfleet {APT_DIR_OPTIONS}"),
        "apt-get-simulate": f"{APT_ENV} apt-get {APT_DIR_OPTIONS} -s -o Debug::NoLocking=1 "
                            "dist-upgrade",
        "apt-cache-show": f"{APT_ENV} apt-cache {APT_DIR_OPTIONS} show",
    },
    "dnf": {
        "dnf-makecache": f"{ENV} dnf {DNF_DIR_OPTIONS} --setopt=exit_on_lock=True makecache "
                         "--refresh",
        "dnf-needs-restarting": f"{ENV} dnf {DNF_DIR_OPTIONS} -q -C --setopt=exit_on_lock=True "
                                "needs-restarting -r",
        "dnf-repoquery-upgrades": (
            f"{ENV} dnf {DNF_DIR_OPTIONS} -q -C --setopt=exit_on_lock=True repoquery "
            "--upgrades --latest-limit=1 --queryformat "
            "'%{name}\\t%{epoch}\\t%{version}\\t%{release}\\t%{arch}\\t%{repoid}\\t%{buildtime}'"),
        "dnf-updateinfo-list": f"{ENV} dnf {DNF_DIR_OPTIONS} -q -C --setopt=exit_on_lock=True "
                               "updateinfo list --all",
        "dnf-list-obsoletes": f"{ENV} dnf {DNF_DIR_OPTIONS} -q -C --setopt=exit_on_lock=True "
                              "list --obsoletes",
        "dnf-updateinfo-info": f"{ENV} dnf {DNF_DIR_OPTIONS} -q -C --setopt=exit_on_lock=True "
                               "updateinfo info --all",
    },
    "zypper": {
        "zypper-refresh": f"{ENV} ZYPP_LOCK_TIMEOUT=60 zypper {ZYPPER_DIR_OPTIONS} --xmlout "
                          "--non-interactive refresh",
        "zypper-needs-rebooting": f"{ENV} ZYPP_LOCK_TIMEOUT=60 zypper {ZYPPER_DIR_OPTIONS} "
                                  "--non-interactive needs-rebooting",
        "zypper-list-updates": f"{ENV} ZYPP_LOCK_TIMEOUT=60 zypper {ZYPPER_DIR_OPTIONS} "
                               "--xmlout --non-interactive --no-refresh list-updates",
        "zypper-list-patches": f"{ENV} ZYPP_LOCK_TIMEOUT=60 zypper {ZYPPER_DIR_OPTIONS} "
                               "--xmlout --non-interactive --no-refresh list-patches --all",
        "zypper-patch-info": f"{ENV} ZYPP_LOCK_TIMEOUT=60 zypper {ZYPPER_DIR_OPTIONS} "
                             "--xmlout --non-interactive --no-refresh info -t patch",
    },
}
SOURCED_SCRIPTS = {"dnf": "dnf-updateinfo-xml", "zypper": "zypper-updateinfo"}
"""Scripts whose sourced variant takes the directory as arguments (checked below)."""

MANAGERS: dict[str, ModuleType] = {"apt": apt, "dnf": dnf, "zypper": zypper}


@pytest.mark.parametrize("manager", list(MANAGERS))
def test_sourced_scan_commands(manager: str) -> None:
    module = MANAGERS[manager]
    rewrite = module.SOURCE_LAYOUT.rewrite(SOURCE_DIR)
    expected = SOURCED_PROBES[manager]
    for probe in module.SUPPORT.probes:
        sent = rewrite(probe.command)
        if probe.name in expected:
            assert sent.render(sudo=False) == expected[probe.name], probe.name
            assert (sent.name, sent.privileged, sent.ok_exit) == (
                probe.command.name, probe.command.privileged, probe.command.ok_exit)
        elif probe.name == SOURCED_SCRIPTS.get(manager):
            assert sent.argv[:2] == ("sh", "-c") and sent.argv[-1].startswith(SOURCE_DIR)
        else:
            assert sent == probe.command, f"{probe.name} should not change"


def test_sourced_updateinfo_readers_read_the_source() -> None:
    py = dnf.SOURCE_LAYOUT.rewrite(SOURCE_DIR)(dnf.UPDATEINFO_XML.command).argv
    assert py[-2:] == (f"{SOURCE_DIR}/repos.d", f"{SOURCE_DIR}/cache")
    assert "conf.read()\nconf.reposdir = [sys.argv[1]]\nconf.cachedir = sys.argv[2]\n" in py[4]
    assert py[2].endswith('-c "$1" "$2" "$3"')
    sh = zypper.SOURCE_LAYOUT.rewrite(SOURCE_DIR)(zypper.UPDATEINFO.command).argv
    assert sh[-1] == f"{SOURCE_DIR}/cache"
    assert 'for dir in "$1"/raw/*/repodata; do' in sh[2]
    assert "/var/cache/zypp" not in sh[2]


def test_sourced_install_commands() -> None:
    a = apt.SOURCE_LAYOUT.rewrite(SOURCE_DIR)
    sudo_env = APT_ENV.removeprefix("env ").replace(" DEBIAN_FRONTEND=noninteractive", "")
    sourced = a(apt.apt_install([DEB_SPEC], 60))
    assert sourced.render(sudo=True) == (
        f"sudo -n {sudo_env} -- apt-get {APT_DIR_OPTIONS} -y -q -o DPkg::Lock::Timeout=60 "
        "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install "
        "--only-upgrade --no-install-recommends -- fake-app:all=1.1")
    assert sourced.variable_from is not None
    assert sourced.argv[sourced.variable_from:] == ("--", "fake-app:all=1.1")
    assert a(apt.apt_mark("hold", ["fake-app"])).render(sudo=False) == (
        f"{APT_ENV} apt-mark {APT_DIR_OPTIONS} hold -- fake-app")
    assert a(apt.APT_SHOWHOLD).render(sudo=False) == (
        f"{APT_ENV} apt-mark {APT_DIR_OPTIONS} showhold")
    d = dnf.SOURCE_LAYOUT.rewrite(SOURCE_DIR)
    assert d(dnf.dnf_upgrade([SPEC], ["fake-x"])).render(sudo=False) == (
        f"{ENV} dnf {DNF_DIR_OPTIONS} -y --setopt=exit_on_lock=True "
        "--setopt=install_weak_deps=False upgrade --exclude=fake-x -- fake-app-0:1.1-1.noarch")
    z = zypper.SOURCE_LAYOUT.rewrite(SOURCE_DIR)
    assert z(zypper.zypper_update([SPEC], 60)).render(sudo=False) == (
        f"{ENV} ZYPP_LOCK_TIMEOUT=60 zypper {ZYPPER_DIR_OPTIONS} --non-interactive "
        "--no-refresh update --no-recommends --auto-agree-with-licenses -- "
        "fake-app.noarch=1.1-1")


HOSTILE = "deb [trusted=yes] file:/srv/x ./\n'; rm -rf / #\n$(reboot) `id` \"$HOME\""


@pytest.mark.parametrize("manager", list(MANAGERS))
def test_source_configuration_reaches_the_node_as_one_quoted_argument(manager: str) -> None:
    layout = MANAGERS[manager].SOURCE_LAYOUT
    source = PatchSource(name="vendor", products=("*",), configuration=HOSTILE)
    command = sources.prepare_command(layout, source)
    assert command.argv[2] == sources.PREPARE_SCRIPT and HOSTILE not in command.argv[2]
    assert command.privileged
    words = shlex.split(command.render(sudo=True))
    at = words.index(sources.PREPARE_SCRIPT)
    expected = [w for d in layout.dirs for w in ("dir", d)] + [
        "file", layout.config_file, HOSTILE,
        *(w for f, text in layout.files for w in ("file", f, text))]
    assert words[at + 1:] == ["patchfleet", *expected]


def test_only_source_directories_are_removed() -> None:
    assert sources.cleanup_command(SOURCE_DIR).render(sudo=False).endswith(
        f"rm -rf -- {SOURCE_DIR}")
    for path in ("/", "/var/tmp", "/var/tmp/patchfleet-source.", "/etc/apt",
                 f"{SOURCE_DIR}/..", f"{SOURCE_DIR} /etc", "/var/tmp/patchfleet-source.a/b1234567"):
        with pytest.raises(ValueError, match="refusing to remove"):
            sources.cleanup_command(path)
