"""The set-up scripts name no package host: `scripts/setup-asterisk.sh` passes a mirror to debootstrap only when
HOTLINE_DEBIAN_MIRROR is set (otherwise debootstrap's own default), and no file in the repository spells out a
package registry's host name. debootstrap is replaced by a stand-in on PATH that records its arguments and
fails, so nothing is downloaded and the real chroot is untouched."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "setup-asterisk.sh"
# Registries' host names, assembled so that this file does not contain them either.
REGISTRY_HOSTS = [".".join(parts) for parts in (
    ("deb", "debian", "org"), ("ftp", "debian", "org"), ("security", "debian", "org"), ("archive", "ubuntu", "com"),
    ("pypi", "org"), ("files", "pythonhosted", "org"), ("registry", "npmjs", "org"), ("mirrors", "aliyun", "com"),
    ("mirrors", "tuna", "tsinghua", "edu", "cn"), ("mirrors", "ustc", "edu", "cn"), ("download", "pytorch", "org"),
)]


def debootstrap_args(tmp_path: Path, **env: str) -> list[str]:
    fake = tmp_path / "bin"
    fake.mkdir()
    record = tmp_path / "args"
    (fake / "debootstrap").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}"\nexit 3\n')
    (fake / "debootstrap").chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k != "HOTLINE_DEBIAN_MIRROR"}
    proc = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=600,
        env=base | {"PATH": f"{fake}:{os.environ['PATH']}", "HOTLINE_ASTERISK_CHROOT": str(tmp_path / "chroot")} | env,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr  # the stand-in's exit status: it was called
    return record.read_text().splitlines()


def test_debootstrap_uses_its_own_default_mirror(tmp_path: Path) -> None:
    assert debootstrap_args(tmp_path) == ["--variant=minbase", "sid", str(tmp_path / "chroot")]


def test_debootstrap_gets_the_mirror_when_one_is_set(tmp_path: Path) -> None:
    mirror = "http://mirror.internal.example/debian"
    assert debootstrap_args(tmp_path, HOTLINE_DEBIAN_MIRROR=mirror) == [
        "--variant=minbase", "sid", str(tmp_path / "chroot"), mirror]


def test_no_package_registry_host_names_in_the_repository() -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    found = []
    for name in filter(None, files):
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        text = path.read_bytes().decode("utf-8", "replace").lower()
        found += [f"{name}: {host}" for host in REGISTRY_HOSTS if host in text]
    assert not found, found
