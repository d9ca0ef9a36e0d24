"""KeyRing caching and known_hosts matching (OpenSSH rules), without a server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import asyncssh
import pytest

from patchfleet.errors import AuthError, HostKeyError
from patchfleet.transport.keys import KeyRing, KnownHosts, known_hosts_name, openssh_public


def _key() -> asyncssh.SSHKey:
    """A public key, as a server presents it and known_hosts holds it."""
    return asyncssh.generate_private_key("ssh-ed25519").convert_to_public()


def _private() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def _kh(path: Path, text: str) -> KnownHosts:
    path.write_text(text)
    return KnownHosts(path)


def test_known_hosts_name() -> None:
    assert known_hosts_name("web-1", 22) == "web-1"
    assert known_hosts_name("10.0.0.5", 2201) == "[10.0.0.5]:2201"


def test_port_entries_follow_openssh(tmp_path: Path) -> None:
    a, b = _key(), _key()
    kh = _kh(
        tmp_path / "kh",
        f"10.0.0.5 {openssh_public(a)}\n[10.0.0.5]:2201 {openssh_public(b)}\n",
    )
    assert kh.lookup("10.0.0.5", "", 22).host_keys == (a,)
    assert kh.lookup("10.0.0.5", "", 2201).host_keys == (b,)
    # asyncssh would fall back to the port-22 entry here; OpenSSH (and we) don't.
    assert not kh.lookup("10.0.0.5", "", 2202).known


def test_address_entries_match_too(tmp_path: Path) -> None:
    a = _key()
    kh = _kh(tmp_path / "kh", f"[192.0.2.7]:2201 {openssh_public(a)}\n")
    assert kh.lookup("web-1.example", "192.0.2.7", 2201).host_keys == (a,)
    assert kh.asyncssh_trust("web-1.example", "192.0.2.7", 2201) == ([a], [], [])


def test_hashed_and_pattern_entries(tmp_path: Path) -> None:
    a, b = _key(), _key()
    path = tmp_path / "kh"
    path.write_text(f"[h1]:2201 {openssh_public(a)}\n*.lab {openssh_public(b)}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(path)], check=True, capture_output=True)
    kh = KnownHosts(path)
    assert kh.lookup("h1", "", 2201).host_keys == (a,)
    assert kh.lookup("db.lab", "", 22).host_keys == (b,)


def test_revoked_and_ca_entries(tmp_path: Path) -> None:
    a, ca = _key(), _key()
    kh = _kh(
        tmp_path / "kh",
        f"@revoked * {openssh_public(a)}\n@cert-authority *.lab {openssh_public(ca)}\n",
    )
    trust = kh.lookup("db.lab", "", 22)
    assert trust.revoked == (a,)
    assert trust.ca_keys == (ca,)
    assert trust.known


def test_missing_file_is_empty(tmp_path: Path) -> None:
    kh = KnownHosts(tmp_path / "nope")
    assert not kh.exists
    assert not kh.lookup("x", "", 22).known


def test_unparseable_file_is_a_host_key_error(tmp_path: Path) -> None:
    with pytest.raises(HostKeyError, match="cannot parse known_hosts"):
        _kh(tmp_path / "kh", "@bogus-marker host ssh-ed25519 AAAA\n")


def test_add_appends_once_and_refuses_a_conflicting_key(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "known_hosts"
    kh = KnownHosts(path)
    a, b = _key(), _key()
    assert kh.add("10.0.0.5", 2201, a) is True
    assert kh.add("10.0.0.5", 2201, a) is False
    assert path.read_text() == f"[10.0.0.5]:2201 {openssh_public(a)}\n"
    assert kh.lookup("10.0.0.5", "", 2201).host_keys == (a,)
    with pytest.raises(HostKeyError, match="another key"):
        kh.add("10.0.0.5", 2201, b)
    assert kh.add("10.0.0.5", 22, b) is True
    assert path.read_text().splitlines()[-1] == f"10.0.0.5 {openssh_public(b)}"


def test_add_keeps_a_file_without_trailing_newline_valid(tmp_path: Path) -> None:
    a, b = _key(), _key()
    path = tmp_path / "kh"
    path.write_text(f"old {openssh_public(a)}")
    KnownHosts(path).add("new", 22, b)
    assert KnownHosts(path).lookup("old", "", 22).host_keys == (a,)
    assert KnownHosts(path).lookup("new", "", 22).host_keys == (b,)


def test_key_ring_reads_each_file_once(tmp_path: Path) -> None:
    path = tmp_path / "id_ed25519"
    path.write_bytes(_private().export_private_key())
    ring = KeyRing(use_agent=False)
    first = ring.private_key(str(path))
    assert ring.private_key(str(path)) is first
    assert ring.key_loads == 1
    assert ring.known_hosts(str(tmp_path / "kh")) is ring.known_hosts(str(tmp_path / "kh"))


async def test_default_identities_are_the_fallback(tmp_path: Path) -> None:
    present = tmp_path / "id_ed25519"
    present.write_bytes(_private().export_private_key())
    ring = KeyRing(use_agent=False, default_identities=(str(tmp_path / "id_rsa"), str(present)))
    keys, described = await ring.client_keys(None)
    assert len(keys) == 1 and described == str(present)


async def test_unusable_agent_and_no_files_is_a_clear_auth_error(tmp_path: Path) -> None:
    ring = KeyRing(agent_path=str(tmp_path / "no-agent.sock"), default_identities=())
    with pytest.raises(AuthError, match="no SSH key to log in with"):
        await ring.client_keys(None)
    ring.close()


def test_garbage_key_file(tmp_path: Path) -> None:
    path = tmp_path / "id_ed25519"
    path.write_text("not a key\n")
    with pytest.raises(AuthError, match="not a usable private key"):
        KeyRing(use_agent=False).private_key(str(path))


def test_a_wrong_passphrase_on_a_legacy_pem_key_is_named_as_such(tmp_path: Path) -> None:
    """A legacy PEM key decrypted with a wrong passphrase is garbage that now and then passes
    the padding check and fails to parse instead ("Invalid PEM private key": a CI flake). On
    64 keys the message is always the passphrase one, and never names the passphrase."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    for i in range(64):
        path = tmp_path / f"k{i}.pem"
        path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"the-right-one")))
        assert b"Proc-Type: 4,ENCRYPTED" in path.read_bytes()
        with pytest.raises(AuthError) as info:
            KeyRing(use_agent=False, passphrase=f"wrong-{i}").private_key(str(path))
        assert str(info.value) == (
            f"identity_file {path} is encrypted and the passphrase given does not open it")
