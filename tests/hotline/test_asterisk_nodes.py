"""More Asterisk nodes in the shared chroot (hotline/services/asterisk.py): their config is config/asterisk/ with
their ports and directories, and stopping one leaves /proc and /dev mounted for the others."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hotline.services.asterisk import (
    CONFIG_DIR, SETUP_SCRIPT, AsteriskError, AsteriskNode, AsteriskService, processes_in, render_config, set_options,
)
from tests.conftest import REPO_ROOT

# The ports the scale-out test uses too (tests/test_scale_out.py); the default node is left alone.
NODE_B = AsteriskNode("b", sip_port=5160, ari_port=8098, rtp_ports=(11100, 11499), seat_ports=(5171, 5172, 5173, 5174))
NODE_C = AsteriskNode("c", sip_port=5260, ari_port=8198, rtp_ports=(11500, 11999), seat_ports=(5271, 5272, 5273, 5274))


def _values(text: str, section: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("["):
            current = line[1:line.index("]")]
        elif current == section and "=" in line and not line.lstrip().startswith(";"):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.lstrip(">").strip())
    return out


def test_a_node_is_the_default_config_with_its_own_ports_and_directories(tmp_path: Path) -> None:
    chroot = tmp_path
    render_config(CONFIG_DIR, chroot / "etc/asterisk-b", {"HOTLINE_ARI_USER": "u", "HOTLINE_ARI_PASSWORD": "p"})
    NODE_B.render(CONFIG_DIR, chroot)
    etc = chroot / "etc/asterisk-b"

    dirs = _values((etc / "asterisk.conf").read_text(), "directories")
    assert dirs["astetcdir"] == ["/etc/asterisk-b"] and dirs["astrundir"] == ["/var/run/asterisk-b"]
    assert dirs["astdbdir"] == ["/var/lib/asterisk-b"] and dirs["astlogdir"] == ["/var/log/asterisk-b"]
    assert dirs["astmoddir"] == _values((CONFIG_DIR / "asterisk.conf").read_text(), "directories")["astmoddir"]
    assert _values((etc / "asterisk.conf").read_text(), "options")["systemname"] == ["b"]
    assert _values((etc / "http.conf").read_text(), "general")["bindport"] == ["8098"]
    assert _values((etc / "pjsip.conf").read_text(), "transport-udp")["bind"] == ["127.0.0.1:5160"]
    assert _values((etc / "pjsip.conf").read_text(), "agent3")["contact"] == ["sip:agent3@127.0.0.1:5173"]
    rtp = _values((etc / "rtp.conf").read_text(), "general")
    assert (rtp["rtpstart"], rtp["rtpend"]) == (["11100"], ["11499"])
    # Everything else is the default node's file, unchanged.
    for name in ("extensions.conf", "queues.conf", "modules.conf"):
        assert (etc / name).read_text() == (CONFIG_DIR / name).read_text()
    assert "password = p" in (etc / "ari.conf").read_text()


def test_set_options_refuses_a_key_the_config_no_longer_has() -> None:
    text = "[general]\nbindport = 8088\n\n[other]\nx = 1\n"
    assert set_options(text, "general", {"bindport": "9"}) == "[general]\nbindport = 9\n\n[other]\nx = 1\n"
    added = set_options(text, "general", {"new": "v"}, add=True)
    assert added == "[general]\nbindport = 8088\nnew = v\n\n[other]\nx = 1\n"
    with pytest.raises(AsteriskError, match="bindaddr"):
        set_options(text, "general", {"bindaddr": "0.0.0.0"})
    with pytest.raises(ValueError):
        AsteriskNode("B-1", 1, 2, (3, 4), ())


@pytest.fixture
def two_nodes() -> Iterator[tuple[AsteriskService, AsteriskService]]:
    subprocess.run(["bash", str(SETUP_SCRIPT)], check=True)
    b, c = (AsteriskService(ari_password="test-ari", ari_url=n.ari_url, node=n,
                            log_file=REPO_ROOT / "var" / "log" / f"asterisk-{n.name}.out") for n in (NODE_B, NODE_C))
    try:
        yield b, c
    finally:
        b.stop()
        c.stop()


def _mounted(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


def test_stopping_one_node_leaves_the_chroot_mounted_for_another(
        two_nodes: tuple[AsteriskService, AsteriskService]) -> None:
    b, c = two_nodes
    b.restart()
    c.restart()
    info = httpx.get(f"{b.ari_url}/ari/asterisk/info", auth=b.auth, timeout=5).json()
    assert info["config"]["name"] == "b"  # systemname: node b's channel ids are "b-…"
    assert c.is_running() and b.is_running()
    assert "hotline-humans" in c.cli("queue show hotline-humans")

    b.stop()
    assert not b.is_running() and not b.ari_ready()
    assert _mounted(c.chroot / "proc") and _mounted(c.chroot / "dev")  # node c still needs them
    assert c.ari_ready() and "System uptime" in c.cli("core show uptime seconds")
    assert processes_in(c.chroot)  # at least node c's Asterisk

    c.stop()
    assert not c.ari_ready()
    if not processes_in(c.chroot):  # the default node may be running for another test run: then they stay
        assert not _mounted(c.chroot / "proc") and not _mounted(c.chroot / "dev")


def test_the_hold_melody_is_in_place_before_asterisk_starts(tmp_path: Path) -> None:
    """res_musiconhold disables a class whose directory is empty at start, and a module reload does not revive it:
    on a fresh machine the first hold was silent. install_config writes the melody first."""
    svc = AsteriskService(chroot=tmp_path, ari_password="p")
    svc.install_config()
    melody = list((tmp_path / "var/lib/asterisk/moh").glob("*.wav"))
    assert melody and melody[0].stat().st_size > 8000 * 2 * 5  # seconds of 8 kHz audio
    moh = _values((tmp_path / "etc/asterisk/musiconhold.conf").read_text(), "default")
    assert moh["directory"] == ["/var/lib/asterisk/moh"]
