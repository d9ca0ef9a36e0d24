"""``patchfleet sudoers``: the rules name exactly what patchfleet runs as root (issue 16).

The rules are matched here the way sudo matches them (the arguments joined by spaces; a
``^...$`` argument string is a POSIX extended regular expression, sudo >= 1.9.10), against
the commands the scan and install code builds for many package specs, and against commands an
attacker who holds the install user would like to run. The real sudo on a test node checks the
same file in tests/integration/test_sudoers_nodes.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from patchfleet.cli.app import app
from patchfleet.config.hooks import load_hooks
from patchfleet.domain.facts import PackageManager
from patchfleet.domain.inventory import parse_inventory
from patchfleet.errors import ConfigError, InputError
from patchfleet.managers import apt, dnf, zypper
from patchfleet.managers.base import PackageSpec
from patchfleet.managers.post_probes import post_install_probes
from patchfleet.managers.registry import support_for
from patchfleet.ops.reboot import reboot_commands
from patchfleet.ops.sudoers import (
    PROGRAM_PATHS,
    command_specs,
    hook_specs,
    privileged_commands,
    render_sudoers,
    sudoers_word,
)
from patchfleet.transport.base import Command

_UNESCAPE = re.compile(r"\\(.)")


def _allowed(spec: str, argv: tuple[str, ...]) -> bool:
    """Whether the sudoers command ``spec`` allows running ``argv`` (as sudo decides: the
    program by path, the arguments as one string)."""
    path, _, args = spec.partition(" ")
    if path not in PROGRAM_PATHS.get(argv[0], ()):
        return False
    given = " ".join(argv[1:])
    words = [_UNESCAPE.sub(r"\1", w) for w in re.split(r"(?<!\\) ", args)]
    text = " ".join(words)
    if text.startswith("^") and text.endswith("$"):
        return re.fullmatch(text[1:-1], given) is not None
    if text == '""':
        return given == ""
    return text == given


def _rule_allows(argv: tuple[str, ...]) -> bool:
    return any(_allowed(spec, argv)
               for p in privileged_commands() for spec in command_specs(p.command))


DEB = [PackageSpec("libfakessl3", "amd64", "1.1"),
       PackageSpec("fake-tzdata", "all", "1:1.1-2~deb12u1"),
       PackageSpec("libstdc++6", "amd64", "12.2.0-14+deb12u1"),
       PackageSpec("linux-image-6.1.0-28-amd64", "amd64", "6.1.119-1")]
RPM = [PackageSpec("fake-openssl-libs", "x86_64", "1:1.1-1"),
       PackageSpec("kernel", "x86_64", "5.14.0-503.14.1.el9_5"),
       PackageSpec("python3.11-pip", "noarch", "22.3.1-4.el9~beta^1"),
       PackageSpec("gcc-c++", "x86_64", "11.5.0-2.el9")]


def sent_commands() -> list[Command]:
    """Privileged commands as scans and installs build them, with varied arguments."""
    out: list[Command] = [apt.apt_update(60), apt.apt_update(5), dnf.MAKECACHE.command,
                          zypper.REFRESH.command]
    for n in (1, 2, 4):
        out += [apt.apt_install(DEB[:n], 300), apt.apt_mark("hold", [s.name for s in DEB[:n]]),
                apt.apt_mark("unhold", [s.name for s in DEB[:n]]),
                dnf.dnf_upgrade(RPM[:n]), dnf.dnf_upgrade(RPM[:n], ["fake-sudo", "kernel"]),
                zypper.zypper_update(RPM[:n], 60),
                zypper.zypper_lock("addlock", [s.name for s in RPM[:n]], 60),
                zypper.zypper_lock("removelock", [s.name for s in RPM[:n]], 60)]
    for pm in (PackageManager.APT, PackageManager.DNF, PackageManager.ZYPPER):
        support = support_for(pm)  # every probe a scan sends: a new privileged one shows here
        out += [p.command for p in (*support.probes, *post_install_probes(support))
                if p.scanned and p.build is None]
    out += list(reboot_commands())
    return [c for c in out if c.privileged]


@pytest.mark.parametrize("command", sent_commands(), ids=lambda c: c.label)
def test_every_privileged_command_patchfleet_sends_is_allowed(command: Command) -> None:
    assert _rule_allows(command.argv), " ".join(command.argv)


def test_privileged_commands_are_plain_programs() -> None:
    """No shell and no env under sudo: sudoers names the program itself."""
    programs = {p.command.argv[0] for p in privileged_commands()}
    assert not programs & {"sh", "bash", "env", "xargs", "python3"}
    assert all(p.why and p.alias.startswith("PATCHFLEET_") for p in privileged_commands())
    assert len({p.alias for p in privileged_commands()}) == len(privileged_commands())


APT_FIXED = ("apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=60", "-o",
             "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
             "install", "--only-upgrade", "--no-install-recommends", "--")
DNF_FIXED = ("dnf", "-y", "--setopt=exit_on_lock=True", "--setopt=install_weak_deps=False",
             "upgrade")
ATTACKS = [
    ("sh", "-c", "id"),
    ("env", "sh"),
    ("apt-get", "install", "sl"),  # not the fixed options
    (*APT_FIXED,),  # no package
    (*APT_FIXED, "fake-curl", "-o", "APT::Update::Pre-Invoke::=sh"),
    (*APT_FIXED, "fake-curl", "-oAPT::X=1"),
    (*APT_FIXED, "/tmp/evil.deb"),
    (*APT_FIXED, "./evil.deb"),
    (*APT_FIXED[:-1], "-o", "Dpkg::Pre-Invoke::=id", "--", "fake-curl"),
    ("apt-get", "-q", "-o", "DPkg::Lock::Timeout=60", "update", "-o", "APT::X=1"),
    ("apt-get", "-q", "-o", "DPkg::Lock::Timeout=60 -o APT::X=1", "update"),
    ("apt-mark", "hold", "--", "x", "-o", "y"),
    (*DNF_FIXED, "--setopt=pluginpath=/tmp", "--", "kernel"),
    (*DNF_FIXED, "--exclude=a", "--", "kernel", "--setopt=x=y"),
    (*DNF_FIXED, "--", "/tmp/evil.rpm"),
    ("dnf", "-y", "--setopt=exit_on_lock=True", "--setopt=install_weak_deps=False", "install",
     "--", "evil"),
    ("zypper", "--non-interactive", "--no-refresh", "update", "--no-recommends",
     "--auto-agree-with-licenses", "--", "x", "--plus-repo", "http://evil"),
    ("zypper", "--non-interactive", "addlock", "--", "x y", "--root=/"),
    ("find", "/proc", "-exec", "sh", "{}", ";"),
    ("reboot", "-f"),
    ("shutdown", "-h", "now"),
    ("systemctl", "start", "evil"),
    ("needrestart", "-r", "a"),
]


@pytest.mark.parametrize("argv", ATTACKS, ids=lambda a: " ".join(a)[:60])
def test_anything_else_is_refused(argv: tuple[str, ...]) -> None:
    assert not _rule_allows(argv)


def test_sudoers_words_are_escaped() -> None:
    assert sudoers_word("DPkg::Lock::Timeout=60") == r"DPkg\:\:Lock\:\:Timeout\=60"
    assert sudoers_word("a,b*c?[d]!#") == r"a\,b\*c\?\[d\]\!\#"
    assert sudoers_word("^x:y$", regex=True) == r"^x\:y$"
    for bad in ("", "two\nlines"):
        with pytest.raises(ConfigError):
            sudoers_word(bad)


def test_the_file_names_users_environment_and_every_alias() -> None:
    text = render_sudoers(scan_user="pf-scan", install_user="pf-install", families=("apt",))
    assert 'Defaults:pf-scan, pf-install secure_path="/usr/sbin:/usr/bin:/sbin:/bin"' in text
    keep = re.search(r'Defaults:pf-scan, pf-install env_keep \+= "([^"]*)"', text)
    assert keep and "LC_ALL" in keep[1].split() and "DEBIAN_FRONTEND" not in keep[1]
    assert 'Defaults:pf-install env_keep += "PATCHFLEET_RUN_ID' in text
    scan_line = next(ln for ln in text.splitlines() if ln.startswith("pf-scan ALL"))
    install_line = next(ln for ln in text.splitlines() if ln.startswith("pf-install ALL"))
    assert scan_line == ("pf-scan ALL=(root) NOPASSWD: PATCHFLEET_APT_REFRESH, "
                         "PATCHFLEET_NEEDRESTART, PATCHFLEET_PROC_MAPS")
    assert "PATCHFLEET_APT_INSTALL" in install_line and "PATCHFLEET_APT_REFRESH" in install_line
    assert "DNF" not in text and "ZYPPER" not in text
    for alias in re.findall(r"^Cmnd_Alias (\w+) =", text, re.M):
        assert alias in install_line
    one = render_sudoers(scan_user="pf", install_user="pf", families=("zypper",))
    assert next(ln for ln in one.splitlines() if " ALL=(root) " in ln).startswith(
        "pf ALL=(root) NOPASSWD: PATCHFLEET_ZYPPER_REFRESH, PATCHFLEET_ZYPPER_PS, "
        "PATCHFLEET_PROC_MAPS, PATCHFLEET_ZYPPER_INSTALL")


def test_bad_users_and_families_are_refused() -> None:
    with pytest.raises(InputError, match="not a user name"):
        render_sudoers(scan_user="a b", install_user="x")
    with pytest.raises(InputError, match="--family yum: choose from apt, dnf, zypper"):
        render_sudoers(scan_user="a", install_user="b", families=("yum",))


def test_hooks_are_named_exactly_and_scripts_are_refused(tmp_path: Path) -> None:
    hooks = load_hooks({"pre_install": {"command": "systemctl stop app: web=1"}}, "hooks.yaml")
    specs = hook_specs(hooks)
    assert specs[0] == ("pre_install",
                        r"/usr/bin/sh -c systemctl\ stop\ app\:\ web\=1 patchfleet-hook")
    assert _allowed(specs[0][1], hooks.get("pre_install").argv())  # type: ignore[union-attr]
    (tmp_path / "drain.sh").write_text("echo drain\n")
    scripted = load_hooks({"on_exit": {"script": "drain.sh"}}, "hooks.yaml", tmp_path)
    with pytest.raises(ConfigError, match=r"hook on_exit is a script .* 'command: /path/on/node/"):
        hook_specs(scripted)


def test_cli_prints_and_writes_the_rules(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(app, ["sudoers", "--scan-user", "s", "--install-user", "i",
                                  "--family", "dnf"])
    assert printed.exit_code == 0, printed.output
    assert "# Generated by: patchfleet sudoers --scan-user s --install-user i --family dnf" \
        in printed.output
    assert "i ALL=(root) NOPASSWD: PATCHFLEET_DNF_REFRESH, PATCHFLEET_PROC_MAPS, " \
        "PATCHFLEET_DNF_INSTALL" \
        in printed.output
    target = tmp_path / "patchfleet.sudoers"
    written = runner.invoke(app, ["sudoers", "-o", str(target)])
    assert written.exit_code == 0 and target.read_text().startswith("# patchfleet ")
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text("on_exit:\n  script: drain.sh\n")
    (tmp_path / "drain.sh").write_text("echo drain\n")
    refused = runner.invoke(app, ["sudoers", "--hooks", str(hooks)])
    assert refused.exit_code == 2 and "is a script" in refused.output


def test_the_readme_section_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README "Who may scan, who may install": its `patchfleet sudoers` line writes the rules
    the node test installs, and its inventory block is a valid inventory with both identities."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("\n### Who may scan, who may install: identities and sudoers\n"):]
    bash = re.search(r"```bash\n(.*?)```", section, re.S)
    yaml_block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert bash and yaml_block
    line = next(ln for ln in bash.group(1).splitlines() if ln.startswith("patchfleet sudoers"))
    assert "visudo -c -f patchfleet.sudoers && install -m 0440 patchfleet.sudoers " \
           "/etc/sudoers.d/patchfleet" in bash.group(1)
    monkeypatch.chdir(tmp_path)
    ran = CliRunner().invoke(app, line.split()[1:])
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "patchfleet.sudoers").read_text() == render_sudoers(
        scan_user="patchfleet-scan", install_user="patchfleet-install",
        command_line=line.removesuffix(" -o patchfleet.sudoers"))
    nodes = "nodes: [{id: web-1, host: 10.0.0.5}]\n"
    inv = parse_inventory(yaml.safe_load(yaml_block.group(1) + nodes), "README.md")
    (node,) = inv.resolved()
    installer = node.for_install()
    assert (node.user, installer.user) == ("patchfleet-scan", "patchfleet-install")
    assert installer.identity_file != node.identity_file and node.sudo
