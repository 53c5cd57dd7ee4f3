"""The cores a process may keep busy: affinity within the cgroup's CPU quota (fake cgroup trees)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from embedding_explorer import cores
from embedding_explorer.cores import cpu_limit


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _mountinfo(*mounts: tuple[str, Path, str, str]) -> str:
    """Lines of /proc/self/mountinfo: (root, mount point, fstype, super options) each."""
    return "".join(
        f"{30 + i} 23 0:{28 + i} {root} {point} rw,relatime - {kind} {kind} {options}\n"
        for i, (root, point, kind, options) in enumerate(mounts)
    )


def test_cgroup_v2_quota_rounded_up_and_the_least_of_the_hierarchy_wins(tmp_path: Path) -> None:
    """cpu.max "150000 100000" is 1.5 CPUs: 2; a parent's "100000 100000" (1 CPU) wins; a
    container sees its own cgroup as the mount's root."""
    root = tmp_path / "cgroup2"
    _write(root / "cpu.max", "max 100000\n")
    _write(root / "pod" / "cpu.max", "150000 100000\n")
    host = _mountinfo(("/", root, "cgroup2", "rw"))
    assert cpu_limit("0::/pod\n", host) == 2
    _write(root / "cpu.max", "100000 100000\n")
    assert cpu_limit("0::/pod\n", host) == 1
    container = tmp_path / "container"
    _write(container / "cpu.max", "400000 100000\n")
    assert cpu_limit("0::/kubepods/pod1\n", _mountinfo(("/kubepods/pod1", container, "cgroup2", "rw"))) == 4


def test_a_cgroup_beside_the_mount_root_and_escaped_mount_points(tmp_path: Path) -> None:
    """Paths compare by component: a mount of /docker/abc does not hold /docker/abcd (its own
    quota is not read as the other's); a mount point with a space is octal-escaped in mountinfo."""
    point = tmp_path / "my cgroup"
    _write(point / "cpu.max", "200000 100000\n")
    _write(point / "x" / "cpu.max", "max 100000\n")
    escaped = str(point).replace(" ", "\\040")
    mounts = f"30 23 0:28 /docker/abc {escaped} rw,relatime - cgroup2 cgroup2 rw\n"
    assert cpu_limit("0::/docker/abc/x\n", mounts) == 2  # x unlimited, the mount's root 2 CPUs
    assert cpu_limit("0::/docker/abcd/x\n", mounts) is None  # outside the mount: nothing read


def test_no_quota_is_no_limit(tmp_path: Path) -> None:
    root = tmp_path / "cgroup2"
    _write(root / "cpu.max", "max 100000\n")
    assert cpu_limit("0::/\n", _mountinfo(("/", root, "cgroup2", "rw"))) is None
    assert cpu_limit("0::/\n", "") is None  # no cgroup file system mounted


def test_cgroup_v1_cpu_controller_in_a_hybrid_hierarchy(tmp_path: Path) -> None:
    """The unified hierarchy without the cpu controller (no cpu.max): v1's cpu.cfs_quota_us
    over cpu.cfs_period_us (-1: none), as on this project's benchmark machine."""
    unified, cpu = tmp_path / "unified", tmp_path / "cpu"
    unified.mkdir()
    _write(cpu / "docker" / "abc" / "cpu.cfs_quota_us", "250000\n")
    _write(cpu / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    _write(cpu / "cpu.cfs_quota_us", "-1\n")
    _write(cpu / "cpu.cfs_period_us", "100000\n")
    mounts = _mountinfo(
        ("/", unified, "cgroup2", "rw"),
        ("/", cpu, "cgroup", "rw,cpu"),
        ("/", tmp_path / "memory", "cgroup", "rw,memory"),
    )
    cgroup = "4:memory:/docker/abc\n1:cpu:/docker/abc\n0::/\n"
    assert cpu_limit(cgroup, mounts) == 3
    assert cpu_limit("4:memory:/\n1:cpu:/\n0::/\n", mounts) is None
    # v1 mounts named "cpu,cpuacct" as one controller
    assert cpu_limit("1:cpu,cpuacct:/docker/abc\n", _mountinfo(("/", cpu, "cgroup", "rw,cpu,cpuacct"))) == 3


def test_available_cores_is_the_affinity_within_the_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    monkeypatch.setattr(cores, "cgroup_cpu_limit", lambda: None)
    assert cores.available_cores() == affinity
    monkeypatch.setattr(cores, "cgroup_cpu_limit", lambda: 1)
    assert cores.available_cores() == 1
    monkeypatch.setattr(cores, "cgroup_cpu_limit", lambda: affinity + 10)
    assert cores.available_cores() == affinity


def test_unreadable_cgroup_files_are_no_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cores, "PROC_CGROUP", tmp_path / "missing")
    cores.cgroup_cpu_limit.cache_clear()
    try:
        assert cores.cgroup_cpu_limit() is None
    finally:
        cores.cgroup_cpu_limit.cache_clear()
