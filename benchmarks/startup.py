"""Whole-process wall time of light and heavy ``pcdms`` commands, before and after a change, side by side.

    python benchmarks/startup.py --before 48d32a5            # that commit, in a temporary git worktree
    python benchmarks/startup.py --before-src ../old/src     # or a checkout's src/ folder

Each command runs as a user runs it, ``python -m pcdms ...`` in a fresh process (interpreter start,
imports, the work, exit), with the ``src/`` of the old code or of this checkout first on ``PYTHONPATH``.
The two versions alternate within each repeat so that a change in the machine's load hits both; the
median of ``--repeats`` runs is reported. The commands: ``pcdms --help``; ``pcdms pose render`` of a
bundled pose file; ``pcdms data validate`` of the bundled street examples laid out as a tiny dataset;
``pcdms generate`` on the first bundled street pair (the README's command, with ``--model`` set to the
same model folder for both versions, so that only the code differs). The two versions' generated images
must be byte-identical. The result (with the machine, its load and the date) is printed and written to
``benchmarks/results/startup.json``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "startup.json"
PAIR = ("0086_c1s1_000635_00.jpg", "0086_c1s1_000670_00.json")


def commands(examples: Path, model: Path, scratch: Path) -> dict[str, list[str]]:
    """Name to ``pcdms`` arguments; ``{out}`` is replaced by a fresh output folder per run."""
    source, target_pose = (examples / name for name in PAIR)
    return {
        "pcdms --help": ["--help"],
        "pcdms pose render": ["pose", "render", str(target_pose), "--out", "{out}/map.png"],
        "pcdms data validate": ["data", "validate", str(tiny_dataset(examples, scratch / "data")), "--split", "test"],
        "pcdms generate (one bundled pair)": [
            "generate",
            "--source",
            str(source),
            "--target-pose",
            str(target_pose),
            "--model",
            str(model),
            "--out",
            "{out}/result.png",
        ],
    }


def tiny_dataset(examples: Path, root: Path) -> Path:
    """The bundled street pairs as a Market-1501-layout dataset (the layout the street dataset has)."""
    from pcdms.bundled import read_pairs_file
    from pcdms.pose import load_pose, write_annotation_csv

    (root / "bounding_box_test").mkdir(parents=True, exist_ok=True)
    pairs = [
        (source.name, target.with_suffix(".jpg").name) for source, target, _ in read_pairs_file(examples / "pairs.csv")
    ]
    for photo in examples.glob("*.jpg"):
        shutil.copy(photo, root / "bounding_box_test" / photo.name)
    write_annotation_csv(
        root / "market-annotation-test.csv",
        {photo.name: load_pose(photo.with_suffix(".json")) for photo in examples.glob("*.jpg")},
    )
    (root / "market-pairs-test.csv").write_text(
        "from,to\n" + "".join(f"{source},{target}\n" for source, target in pairs)
    )
    return root


def run_once(src: Path, argv: list[str], out: Path) -> tuple[float, str | None]:
    """Seconds the whole process took, and the sha256 of the image it wrote (for generate)."""
    out.mkdir(parents=True)
    argv = [arg.replace("{out}", str(out)) for arg in argv]
    environment = dict(os.environ, PYTHONPATH=str(src))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pcdms", *argv], env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pcdms {' '.join(argv)} failed with {src}:\n{done.stderr[-2000:]}")
    result = out / "result.png"
    return seconds, hashlib.sha256(result.read_bytes()).hexdigest() if result.exists() else None


def checkout(commit: str, scratch: Path) -> Path:
    """A worktree of ``commit`` under ``scratch``; its ``src`` folder."""
    folder = scratch / "before"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), commit], check=True)
    return folder / "src"


def git_commit(folder: Path, revision: str = "HEAD") -> str:
    done = subprocess.run(["git", "-C", str(folder), "rev-parse", revision], capture_output=True, text=True)
    return done.stdout.strip()


def uncommitted(folder: Path) -> list[str]:
    """Files under ``folder`` that differ from the commit (the 'after' run used the working tree)."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", str(folder)], capture_output=True, text=True
    )
    return [line[3:] for line in done.stdout.splitlines()]


def machine() -> dict:
    return {
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
        "device": "CPU (generate runs on the CPU: no GPU here)" if not shutil.which("nvidia-smi") else "see nvidia-smi",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    old = parser.add_mutually_exclusive_group(required=True)
    old.add_argument("--before", help="the commit to compare against (checked out in a temporary worktree)")
    old.add_argument("--before-src", type=Path, help="or the src/ folder of the old code")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        before = args.before_src.resolve() if args.before_src else checkout(args.before, scratch)
        versions = {"before": before, "after": ROOT / "src"}
        examples = ROOT / "src" / "pcdms" / "assets" / "examples" / "street"
        model = ROOT / "src" / "pcdms" / "assets" / "models" / "pcdms-street"
        try:
            load_before = os.getloadavg()
            table = commands(examples, model, scratch)
            times = {name: {version: [] for version in versions} for name in table}
            images = {version: set() for version in versions}
            runs = 0
            for _ in range(args.repeats):
                for name, argv in table.items():
                    for version, src in versions.items():
                        runs += 1
                        seconds, image = run_once(src, argv, scratch / f"run-{runs}")
                        times[name][version].append(round(seconds, 3))
                        if image:
                            images[version].add(image)
                        print(f"{name:35} {version:6} {seconds:6.2f} s", flush=True)
            load_after = os.getloadavg()
        finally:
            if args.before:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before.parent)], check=True
                )

    if images["before"] != images["after"] or len(images["after"]) != 1:
        raise SystemExit(f"the generated images differ between the versions or between runs: {images}")
    rows = {}
    for name, runs in times.items():
        medians = {version: statistics.median(seconds) for version, seconds in runs.items()}
        rows[name] = {
            "before_s": round(medians["before"], 2),
            "after_s": round(medians["after"], 2),
            "saved_s": round(medians["before"] - medians["after"], 2),
            "runs_s": runs,
        }
        print(f"{name:35} before {medians['before']:6.2f} s   after {medians['after']:6.2f} s")
    result = {
        "what": "whole-process wall time of python -m pcdms COMMAND, median of the repeats, versions alternated",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "load_average_1_5_15_min": {"at_start": load_before, "at_end": load_after},
        "before": args.before or str(args.before_src),
        "before_commit": git_commit(ROOT, args.before) if args.before else None,
        "after_commit": git_commit(ROOT),
        "after_uncommitted_src_files": uncommitted(ROOT / "src"),
        "repeats": args.repeats,
        "generated_image_sha256": sorted(images["after"]),
        "commands": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
