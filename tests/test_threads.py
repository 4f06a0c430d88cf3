"""The CPU threads pcdms runs on when the user names none (issue 20): the usable cores that other work leaves idle."""

import psutil
import pytest
import torch

from pcdms import devices
from pcdms.cli import main
from pcdms.devices import cpu_quota, default_threads, set_threads, threads_for
from pcdms.errors import PcdmsError


@pytest.mark.parametrize(
    ("cpus", "quota", "busy", "most", "expected"),
    [
        (2, None, 0.0, 2, 2),  # a machine doing nothing else: torch's own default
        (2, None, 1.0, 2, 1),  # beside a job on every core: one thread, never none
        (2, None, 0.5, 2, 1),  # beside one busy core
        (16, None, 0.25, 8, 6),  # torch's default (physical cores) caps it before the idle share is taken
        (64, 2.5, 0.0, 32, 3),  # a container allowed 2.5 CPUs of a 64-core host
        (8, None, 1.7, 8, 1),  # a sampled fraction out of range is clamped
        (8, None, -0.2, 8, 8),
    ],
)
def test_threads_for_the_idle_share_of_the_usable_cpus(cpus, quota, busy, most, expected):
    assert threads_for(cpus, quota, busy, most) == expected


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cpu_quota_from_cgroup_v2_and_v1(tmp_path):
    write(tmp_path / "v2" / "cpu.max", "250000 100000\n")
    assert cpu_quota(tmp_path / "v2") == 2.5
    write(tmp_path / "v2-unlimited" / "cpu.max", "max 100000\n")
    assert cpu_quota(tmp_path / "v2-unlimited") is None
    write(tmp_path / "v1" / "cpu" / "cpu.cfs_quota_us", "150000\n")
    write(tmp_path / "v1" / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert cpu_quota(tmp_path / "v1") == 1.5
    write(tmp_path / "v1-unlimited" / "cpu" / "cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "v1-unlimited" / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert cpu_quota(tmp_path / "v1-unlimited") is None
    write(tmp_path / "garbled" / "cpu.max", "lots\n")
    assert cpu_quota(tmp_path / "garbled") is None
    assert cpu_quota(tmp_path / "absent") is None


def test_default_threads_counts_only_the_cpus_this_process_may_use(monkeypatch):
    monkeypatch.setattr(devices.os, "sched_getaffinity", lambda pid: {2, 3}, raising=False)
    monkeypatch.setattr(devices, "cpu_quota", lambda: None)
    # CPUs 0 and 1 are busy but not ours; of ours, one is busy.
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval, percpu: [100.0, 100.0, 100.0, 0.0])
    assert default_threads(most=4) == 1
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval, percpu: [100.0, 100.0, 0.0, 0.0])
    assert default_threads(most=4) == 2


def test_no_threads_given_sets_the_default(monkeypatch):
    counts = []
    monkeypatch.setattr(torch, "set_num_threads", counts.append)
    monkeypatch.setattr(devices, "default_threads", lambda most: 1)
    assert set_threads(None) == 1 and set_threads(1) == 1
    assert counts == [1, 1]


def test_the_default_is_capped_by_torch_s_own_not_by_the_last_choice(monkeypatch):
    """An earlier choice of 1 (a busy moment) must not cap a later one: the cap is torch's starting default."""
    caps = []
    monkeypatch.setattr(devices, "default_threads", lambda most: caps.append(most) or 1)
    monkeypatch.setattr(psutil, "cpu_count", lambda logical: 6)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    set_threads(None)
    set_threads(None)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    set_threads(None)
    assert caps == [6, 6, 3]


@pytest.mark.parametrize("count", [2.5, "2", True])
def test_threads_from_python_must_be_whole_numbers(count):
    with pytest.raises(PcdmsError, match="--threads must be a whole number from 1 to"):
        set_threads(count)


def test_a_command_without_threads_runs_on_the_default(monkeypatch, capsys):
    counts = []
    monkeypatch.setattr(torch, "set_num_threads", counts.append)
    monkeypatch.setattr(devices, "default_threads", lambda most: 5)
    assert main(["generate", "--out", "x.png"]) == 1  # then refused: no --source
    assert counts == [5]
    assert "generate needs --source" in capsys.readouterr().err
