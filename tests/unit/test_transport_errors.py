"""Every asyncssh/OS exception maps to a patchfleet NodeError (httpx-style mapping test)."""

from __future__ import annotations

import errno
import inspect
import pickle
import shlex
import socket

import asyncssh
import asyncssh.sftp
import pytest

from patchfleet.config.ansible_inventory import parse_ansible_ini
from patchfleet.domain.baseline import PatchSource
from patchfleet.domain.inventory import parse_inventory
from patchfleet.errors import (
    AuthError,
    CommandError,
    CommandTimeout,
    ConfigError,
    ConnectError,
    HostKeyError,
    NodeError,
)
from patchfleet.managers import apt, sources
from patchfleet.managers.base import PackageSpec
from patchfleet.transport._common import check_sudo
from patchfleet.transport._errors import ERROR_MAP, ErrorContext, map_exception
from patchfleet.transport.base import Command, CommandResult

CONNECTING = ErrorContext(
    "n1", "10.0.0.5", 2222, user="deploy", key="/keys/id_ed25519", connect_timeout=7
)
RUNNING = ErrorContext(
    "n1", "10.0.0.5", 2222, user="deploy", key="/keys/id_ed25519", label="dpkg-query"
)


def _all_subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
    out = {cls}
    for sub in cls.__subclasses__():
        out |= _all_subclasses(sub)
    return out


def _asyncssh_exception_classes() -> list[type[BaseException]]:
    classes: set[type[BaseException]] = set()
    for module in (asyncssh, asyncssh.sftp):
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("asyncssh"):
                classes |= _all_subclasses(obj)
    classes |= _all_subclasses(asyncssh.Error)
    return sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _instantiate(cls: type[BaseException]) -> BaseException:
    """Fill required constructor arguments with plausible values."""
    try:
        params = inspect.signature(cls).parameters.values()
    except ValueError:  # plain Exception subclasses with no __init__ of their own
        return cls("boom")
    args: list[object] = []
    for p in params:
        if p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = str(p.annotation)
        if p.name in (
            "code",
            "exit_status",
            "returncode",
            "msec",
            "width",
            "height",
            "pixwidth",
            "pixheight",
        ) or ("int" in ann and "str" not in ann):
            args.append(1)
        elif p.name == "env":
            args.append({})
        elif "Tuple" in ann or "tuple" in ann:
            args.append(None)
        else:
            args.append("boom")
    return cls(*args)


ASYNCSSH_CLASSES = _asyncssh_exception_classes()


def test_the_walk_found_the_interesting_classes() -> None:
    names = {c.__name__ for c in ASYNCSSH_CLASSES}
    for expected in (
        "Error", "DisconnectError", "ConnectionLost", "HostKeyNotVerifiable", "PermissionDenied",
        "KeyExchangeFailed", "ProtocolError", "MACError", "ChannelOpenError", "ProcessError",
        "TimeoutError", "SFTPError", "SFTPNoSuchFile", "KeyImportError", "PasswordChangeRequired",
    ):  # fmt: skip
        assert expected in names
    assert len(ASYNCSSH_CLASSES) > 40


@pytest.mark.parametrize("cls", ASYNCSSH_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("ctx", [CONNECTING, RUNNING], ids=["connecting", "running"])
def test_every_asyncssh_exception_maps_to_a_node_error(
    cls: type[BaseException], ctx: ErrorContext
) -> None:
    exc = _instantiate(cls)
    mapped = map_exception(exc, ctx)
    assert isinstance(mapped, NodeError)
    assert type(mapped) is not NodeError, "map to a specific subclass"
    assert mapped.node_id == "n1"
    assert mapped.message
    # NodeErrors cross Prefect task boundaries.
    clone = pickle.loads(pickle.dumps(mapped))
    assert type(clone) is type(mapped) and clone.message == mapped.message


@pytest.mark.parametrize(
    ("exc", "ctx", "expected", "text"),
    [
        (asyncssh.PermissionDenied("Permission denied"), CONNECTING, AuthError,
         "refused user 'deploy' with /keys/id_ed25519"),
        (asyncssh.IllegalUserName("bad"), CONNECTING, AuthError, "user name 'deploy'"),
        (asyncssh.PasswordChangeRequired("change", "en"), CONNECTING, AuthError, "password"),
        (asyncssh.HostKeyNotVerifiable("Host key is not trusted"), CONNECTING, HostKeyError,
         "known_hosts"),
        (asyncssh.KeyImportError("Invalid private key"), CONNECTING, AuthError,
         "cannot use private key /keys/id_ed25519"),
        (asyncssh.ConnectionLost("gone"), RUNNING, ConnectError,
         "connection lost while running dpkg-query on 10.0.0.5:2222"),
        (asyncssh.ConnectionLost("gone"), CONNECTING, ConnectError,
         "connection lost while connecting to 10.0.0.5:2222"),
        (asyncssh.KeyExchangeFailed("No matching encryption"), CONNECTING, ConnectError,
         "key exchange"),
        (asyncssh.ProtocolError("bad packet"), RUNNING, ConnectError,
         "failed while running dpkg-query"),
        (asyncssh.ChannelOpenError(2, "open failed"), RUNNING, ConnectError, "MaxSessions"),
        (asyncssh.ChannelOpenError(2, "SSH connection closed"), RUNNING, ConnectError,
         "was closed before running dpkg-query"),
        (asyncssh.TimeoutError({}, "x", None, None, None, None, "", ""), RUNNING, CommandTimeout,
         "timed out"),
        (asyncssh.ProcessError({}, "x", None, 2, None, 2, "", ""), RUNNING, CommandError,
         "exit status 2"),
        (TimeoutError(), CONNECTING, ConnectError,
         "timed out after 7s connecting to 10.0.0.5:2222"),
        (TimeoutError(), RUNNING, CommandTimeout, "dpkg-query"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), CONNECTING,
         ConnectError, "cannot resolve host name '10.0.0.5' (Name or service not known)"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), CONNECTING,
         ConnectError, "refused by 10.0.0.5:2222 ([Errno 111] Connection refused)"),
        (OSError(errno.EMFILE, "Too many open files"), CONNECTING, ConnectError, "ulimit -n"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), CONNECTING, ConnectError,
         "cannot connect to 10.0.0.5:2222 ([Errno 113] No route to host)"),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), RUNNING,
         ConnectError, "connection lost while running dpkg-query"),
        (ValueError("Unknown local username: set one of LOGNAME, USER"), CONNECTING,
         ConnectError, "Unknown local username"),
        (RuntimeError("weird"), RUNNING, ConnectError, "unexpected error"),
    ],
)  # fmt: skip
def test_mapping_table(
    exc: BaseException, ctx: ErrorContext, expected: type[NodeError], text: str
) -> None:
    mapped = map_exception(exc, ctx)
    assert type(mapped) is expected
    assert text in str(mapped)


def test_node_errors_pass_through_unchanged() -> None:
    err = AuthError("already mapped", "n1")
    assert map_exception(err, RUNNING) is err


def test_transient_flags_match_the_kind_of_failure() -> None:
    assert map_exception(ConnectionRefusedError(111, "x"), CONNECTING).transient
    assert not map_exception(asyncssh.PermissionDenied("x"), CONNECTING).transient
    assert not map_exception(asyncssh.HostKeyNotVerifiable("x"), CONNECTING).transient


def test_subclasses_come_before_their_bases_in_the_table() -> None:
    seen: list[type[BaseException]] = []
    for types, _ in ERROR_MAP:
        for t in types:
            for earlier in seen:
                assert not issubclass(t, earlier) or t is earlier, (
                    f"{t.__name__} is shadowed by {earlier.__name__}"
                )
        seen.extend(types)


def test_ipv6_addresses_are_bracketed() -> None:
    ctx = ErrorContext("n1", "fd00::5", 22)
    assert "[fd00::5]:22" in str(map_exception(ConnectionRefusedError(111, "refused"), ctx))


# --- sudo --------------------------------------------------------------------------------


PRIV = Command(("apt-get", "update"), privileged=True, name="apt-get-update")


def _result(status: int, stderr: str) -> CommandResult:
    return CommandResult(PRIV.render(sudo=True), status, "", stderr, 0.01)


def test_sudo_renders_non_interactive_prefix() -> None:
    rendered = PRIV.render(sudo=True)
    assert rendered.startswith("sudo -n LC_ALL=C ") and rendered.endswith(" -- apt-get update")
    assert "DEBIAN_FRONTEND" not in rendered  # debconf evaluates it: never through sudo
    assert PRIV.render(sudo=False).startswith("env LC_ALL=C ")
    unprivileged = Command(("dpkg-query", "-W"))
    assert not unprivileged.render(sudo=True).startswith("sudo")


def test_sudo_password_required_is_an_auth_error_with_the_fix() -> None:
    with pytest.raises(AuthError) as info:
        check_sudo(PRIV, _result(1, "sudo: a password is required\n"), sudo_used=True,
                   user="deploy", node_id="n1")  # fmt: skip
    message = str(info.value)
    assert "NOPASSWD" in message and "'deploy'" in message and "sudo -n" in message
    assert "patchfleet sudoers" in message and "'apt-get update'" in message
    assert info.value.node_id == "n1"


@pytest.mark.parametrize(
    ("stderr", "status", "expected"),
    [
        ("deploy is not in the sudoers file.\n", 1, AuthError),
        ("Sorry, user deploy is not allowed to execute '/usr/bin/env ...' as root.\n", 1,
         AuthError),
        ("sh: 1: sudo: not found\n", 127, CommandError),
    ],
)  # fmt: skip
def test_other_sudo_failures(stderr: str, status: int, expected: type[NodeError]) -> None:
    with pytest.raises(expected):
        check_sudo(PRIV, _result(status, stderr), sudo_used=True, user="deploy", node_id="n1")


def test_sudo_refusals_name_the_fix() -> None:
    """A refused environment points at env_keep; a refused source setup says sources need
    root (no sudoers rule can grant them); the command named is its fixed part."""
    with pytest.raises(AuthError, match="env_keep"):
        check_sudo(PRIV, _result(1, "sudo: sorry, you are not allowed to set the following "
                                    "environment variables: TZ\n"),
                   sudo_used=True, user="d", node_id="n1")
    source = sources.prepare_command(apt.SOURCE_LAYOUT, PatchSource(
        name="vendor", products=("*",), configuration="deb file:/srv/x ./"))
    with pytest.raises(AuthError, match="alternative sources need root or unrestricted sudo"):
        check_sudo(source, _result(1, "sudo: a password is required\n"), sudo_used=True,
                   user="d", node_id="n1")
    install = apt.apt_install([PackageSpec("fake-curl", "amd64", "1.1")], 60)
    with pytest.raises(AuthError) as info:
        check_sudo(install, _result(1, "sudo: a password is required\n"), sudo_used=True,
                   user="d", node_id="n1")
    assert "--no-install-recommends'" in str(info.value) and "fake-curl" not in str(info.value)


def test_sudo_check_ignores_success_unprivileged_and_sudo_less_runs() -> None:
    password = "sudo: a password is required\n"
    check_sudo(PRIV, _result(0, password), sudo_used=True, user="d", node_id="n1")
    check_sudo(PRIV, _result(1, password), sudo_used=False, user="d", node_id="n1")
    plain = Command(("true",))
    check_sudo(plain, _result(1, password), sudo_used=True, user="d", node_id="n1")


def test_the_auth_fix_command_quotes_every_value() -> None:
    """The suggested ssh-copy-id line is pasted into a shell: a key path with spaces or shell
    characters stays one word, and nothing of it runs as a command."""
    ctx = ErrorContext("n1", "10.0.0.5", 2222, user="deploy", key="/keys/my key;touch x")
    err = map_exception(asyncssh.PermissionDenied("denied"), ctx)
    text = str(err)
    assert "ssh-copy-id -i '/keys/my key;touch x' -p 2222 deploy@10.0.0.5" in text
    command = text.split("(ssh-copy-id", 1)[1].split(")", 1)[0]
    assert shlex.split("ssh-copy-id" + command) == [
        "ssh-copy-id", "-i", "/keys/my key;touch x", "-p", "2222", "deploy@10.0.0.5"]


@pytest.mark.parametrize("user", ["x;touch /tmp/p", "a b", "$(id)", "root`id`", "-oProxyCommand=x"])
def test_a_node_user_that_is_not_a_login_name_is_refused(user: str) -> None:
    """On every node and from every source, as on ``defaults``."""
    with pytest.raises(ConfigError, match="not a valid user name"):
        parse_inventory({"nodes": [{"id": "n1", "user": user}]}, "inv.yaml")
    with pytest.raises(ConfigError, match="not a valid user name"):
        parse_ansible_ini(f"[web]\nn1 ansible_user={shlex.quote(user)}\n", "hosts")
