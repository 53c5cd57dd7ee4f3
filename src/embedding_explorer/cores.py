"""How many cores this process may keep busy: its CPU affinity, within its cgroup's CPU quota.

A container limited to 2 CPUs on a 64-core host (Docker's ``--cpus``, a Kubernetes pod's CPU
limit, a GPU pod's included) still sees all 64 in ``os.cpu_count()`` and in its affinity; the
quota shows only in its cgroup's files. Sized by the host, a run would start 8 loader processes
and a thread per host core for work that then waits for its share of 2 CPUs (the kernel
throttles the whole cgroup once the quota is spent). The quota is read once per process:
cgroup v2's ``cpu.max``, or v1's ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``, in the
process's own cgroup and every one above it up to the root the mount shows (the least wins),
rounded up to whole CPUs.
"""

from __future__ import annotations

import functools
import math
import os
import re
from pathlib import Path, PurePosixPath

PROC_CGROUP = Path("/proc/self/cgroup")
PROC_MOUNTINFO = Path("/proc/self/mountinfo")


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity (where the system has one), at most
    its cgroup's CPU quota (:func:`cgroup_cpu_limit`)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit()
    return max(1, min(cores, limit)) if limit is not None else cores


@functools.cache
def cgroup_cpu_limit() -> int | None:
    """The CPUs this process's cgroups allow it, rounded up; None where none is set (or the
    system has no cgroups, or they cannot be read)."""
    try:
        return cpu_limit(PROC_CGROUP.read_text(), PROC_MOUNTINFO.read_text())
    except (OSError, ValueError):
        return None


def cpu_limit(cgroup: str, mountinfo: str) -> int | None:
    """The CPU limit of the process whose ``/proc/self/cgroup`` and ``/proc/self/mountinfo``
    read as given: cgroup v2's where it sets one, else v1's cpu controller's; None without a
    quota."""
    paths = {}  # "2" (the unified hierarchy) or "1" (v1's cpu controller) -> cgroup path
    for line in cgroup.splitlines():
        number, controllers, path = line.split(":", 2)
        if number == "0" and controllers == "":
            paths["2"] = path
        elif "cpu" in controllers.split(","):
            paths["1"] = path
    limits = []
    for mount_root, mount_point, version in _cgroup_mounts(mountinfo):
        own = paths.get(version)
        if own is None:
            continue
        folder = _folder(Path(mount_point), mount_root, own)
        if folder is None:  # this mount does not show the process's cgroup
            continue
        limits += [limit for limit in _limits_up(folder, Path(mount_point), version) if limit is not None]
        if version == "2" and limits:
            break
    return min(limits) if limits else None


def _cgroup_mounts(mountinfo: str) -> list[tuple[str, str, str]]:
    """(root, mount point, "2" or "1") of the cgroup2 mounts and of the v1 mounts of the cpu
    controller, cgroup2 first."""
    mounts = []
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        parts, described = fields.split(), tail.split()
        if len(parts) < 5 or len(described) < 3:
            continue
        kind, options = described[0], described[2].split(",")
        root, point = _unescaped(parts[3]), _unescaped(parts[4])
        if kind == "cgroup2":
            mounts.append((root, point, "2"))
        elif kind == "cgroup" and "cpu" in options:
            mounts.append((root, point, "1"))
    return sorted(mounts, key=lambda mount: mount[2], reverse=True)


def _unescaped(field: str) -> str:
    """A mountinfo path field with its octal escapes (``\\040`` for a space) undone."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _folder(mount_point: Path, mount_root: str, path: str) -> Path | None:
    """Where the cgroup ``path`` is under a mount of the hierarchy's ``mount_root`` (a container
    sees its own cgroup as the root of its mount); None for a cgroup outside the mount's root,
    whose files (another cgroup's) say nothing of this process."""
    own, root = PurePosixPath(path), PurePosixPath(mount_root)
    if not own.is_relative_to(root):
        return None
    return mount_point / own.relative_to(root)


def _limits_up(folder: Path, mount_point: Path, version: str) -> list[int | None]:
    """The limit of each cgroup from ``folder`` up to the mount point."""
    limits = []
    while True:
        limits.append(_limit(folder, version))
        if folder == mount_point or mount_point not in folder.parents:
            return limits
        folder = folder.parent


def _limit(folder: Path, version: str) -> int | None:
    """One cgroup's CPU quota in whole CPUs (rounded up), or None: unlimited, or no such file."""
    try:
        if version == "2":
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            if quota == "max":
                return None
        else:
            quota = (folder / "cpu.cfs_quota_us").read_text().strip()
            period = (folder / "cpu.cfs_period_us").read_text().strip()
            if int(quota) < 0:
                return None
    except (OSError, ValueError):
        return None
    return max(1, math.ceil(int(quota) / int(period)))
