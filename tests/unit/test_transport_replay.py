"""ReplayTransport and load_replay_dir: the test seam for collect/evaluate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from patchfleet.domain.inventory import Inventory, Node
from patchfleet.errors import AuthError, ConfigError, ConnectError
from patchfleet.managers import apt
from patchfleet.managers.common import OS_RELEASE
from patchfleet.transport import (
    Command,
    Recorded,
    ReplayConnector,
    ReplayTransport,
    UnrecordedCommandError,
    load_replay_dir,
)

GOLDEN_APT = Path(__file__).resolve().parents[1] / "golden" / "apt" / "debian12-host"


def test_loads_a_golden_case_folder() -> None:
    responses = load_replay_dir(GOLDEN_APT)
    assert {"dpkg-query", "os-release", "apt-reboot"} <= set(responses)
    assert not any(name.endswith(".parsed") for name in responses)
    dpkg = responses["dpkg-query"]
    assert dpkg.stdout == (GOLDEN_APT / "dpkg-query.stdout").read_text()
    assert dpkg.exit_status == int((GOLDEN_APT / "dpkg-query.exit").read_text())


async def test_replays_probes_by_name() -> None:
    async with ReplayTransport.from_dir("deb-1", GOLDEN_APT) as t:
        result = await t.run(apt.DPKG_QUERY.command)
        os_release = await t.run(OS_RELEASE.command)
    assert result.stdout == (GOLDEN_APT / "dpkg-query.stdout").read_text()
    assert result.command == apt.DPKG_QUERY.command.render(sudo=False)
    assert "ID=debian" in os_release.stdout
    assert t.calls == [apt.DPKG_QUERY.command, OS_RELEASE.command]
    assert t.closed
    assert t.is_root


async def test_unrecorded_command_is_a_loud_error() -> None:
    t = ReplayTransport.from_dir("deb-1", GOLDEN_APT)
    with pytest.raises(UnrecordedCommandError) as info:
        await t.run(Command(("zypper", "lu"), name="zypper-list-updates"))
    message = str(info.value)
    assert "'deb-1'" in message
    assert "zypper-list-updates" in message
    assert str(GOLDEN_APT) in message
    assert "dpkg-query" in message  # lists what is recorded
    assert "zypper-list-updates.stdout" in message  # and how to capture it


async def test_rendered_string_wins_over_name() -> None:
    cmd = Command(("echo", "x"), name="echo")
    t = ReplayTransport(
        "n",
        {"echo": Recorded("by name\n"), cmd.render(sudo=False): Recorded("by command\n")},
    )
    assert (await t.run(cmd)).stdout == "by command\n"
    assert (await t.run(Command(("echo", "y"), name="echo"))).stdout == "by name\n"


async def test_tuples_and_exceptions_as_responses() -> None:
    t = ReplayTransport(
        "n",
        {"a": ("out", "err", 3), "b": ConnectError("connection lost while running b", "n")},
    )
    result = await t.run(Command(("a",), name="a"))
    assert (result.stdout, result.stderr, result.exit_status) == ("out", "err", 3)
    with pytest.raises(ConnectError, match="connection lost"):
        await t.run(Command(("b",), name="b"))


async def test_sudo_password_prompt_is_mapped_like_a_real_node() -> None:
    update = apt.apt_update()
    t = ReplayTransport(
        "n",
        {update.name: Recorded("", "sudo: a password is required\n", 1)},
        is_root=False,
        sudo=True,
        user="deploy",
    )
    with pytest.raises(AuthError, match=r"NOPASSWD rule.*'deploy ALL=\(root\) NOPASSWD: ALL'"):
        await t.run(update)
    assert t.calls[0] is update


async def test_sudo_renders_for_non_root_replays() -> None:
    update = apt.apt_update()
    t = ReplayTransport("n", {update.name: Recorded()}, is_root=False, sudo=True, user="deploy")
    result = await t.run(update)
    assert result.command.startswith("sudo -n LC_ALL=C ")
    assert result.command.endswith(" -- apt-get -q -o DPkg::Lock::Timeout=60 update")


def test_missing_parts_default(tmp_path: Path) -> None:
    (tmp_path / "only-out.stdout").write_text("hello\n")
    (tmp_path / "only-exit.exit").write_text("100\n")
    (tmp_path / "empty-exit.exit").write_text("")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "bad-utf8.stdout").write_bytes(b"caf\xff\n")
    responses = load_replay_dir(tmp_path)
    assert responses["only-out"] == Recorded("hello\n", "", 0)
    assert responses["only-exit"] == Recorded("", "", 100)
    assert responses["empty-exit"].exit_status == 0
    assert responses["bad-utf8"].stdout == "caf\ufffd\n"
    assert "notes" not in responses


def test_bad_exit_file(tmp_path: Path) -> None:
    (tmp_path / "x.exit").write_text("zero\n")
    with pytest.raises(ConfigError, match="not an integer"):
        load_replay_dir(tmp_path)


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds no"):
        load_replay_dir(tmp_path)
    with pytest.raises(ConfigError, match="not a folder"):
        load_replay_dir(tmp_path / "nope")


def test_replay_and_local_need_no_asyncssh() -> None:
    # managers/ (probes) import transport.base, so the package must not import asyncssh eagerly.
    code = (
        "import sys, patchfleet.managers.registry, patchfleet.transport as t\n"
        "t.ReplayTransport, t.LocalTransport, t.load_replay_dir\n"
        "print('asyncssh' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_replay_connector_gives_each_node_its_recorded_outputs() -> None:
    fresh = GOLDEN_APT.parent / "debian12-fresh"
    nodes = Inventory(nodes=[Node(id="a"), Node(id="b"), Node(id="c")]).resolved()
    connector = ReplayConnector.from_dirs({"a": GOLDEN_APT, "b": fresh})
    async with connector.open(nodes[0]) as ta, connector.open(nodes[1]) as tb:
        assert ta.node_id == "a" and tb.node_id == "b"
        assert (await ta.run(apt.DPKG_QUERY.command)).stdout == (
            GOLDEN_APT / "dpkg-query.stdout").read_text()
        assert (await tb.run(apt.DPKG_QUERY.command)).stdout == (
            fresh / "dpkg-query.stdout").read_text()
    with pytest.raises(UnrecordedCommandError, match="no recorded outputs for node 'c'"):
        connector.open(nodes[2])
    connector.close()


async def test_replay_connector_fleet_answers_every_node_alike() -> None:
    connector = ReplayConnector.fleet(GOLDEN_APT, is_root=False, sudo=True, user="ops")
    nodes = Inventory(nodes=[Node(id=f"n{i}") for i in range(3)]).resolved()
    for node in nodes:
        async with connector.open(node) as t:
            assert t.node_id == node.id and t.uses_sudo
            assert "ID=debian" in (await t.run(OS_RELEASE.command)).stdout
