"""How many CPU threads should pcdms use beside other work? (issue 20)

    python benchmarks/threads.py [--model DIR] [--images 3]

Generates one street test pair (the bundled model, its own settings, one image per call, as ``pcdms generate``
does) with 1 thread and with one per core, alone and beside three kinds of other work started in background
processes: a pure-Python loop (one busy core), a torch job on one thread, and a torch job on one thread per
core (another pcdms, a training run). For each it records the seconds per image, the background job's rate
while pcdms ran (as a fraction of its rate with the machine to itself), and the threads
:func:`pcdms.devices.default_threads` chooses with that work running. Results, with the device and date, to
benchmarks/results/threads.json. Needs the street dataset (pcdms data street --out street); run it on a
machine doing nothing else.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import time
from pathlib import Path

import torch

from pcdms.bundled import DEFAULT_SEEDS, bundled_model, stage_generators
from pcdms.data import open_dataset
from pcdms.devices import default_threads
from pcdms.pipelines import load_pcdms_pipeline

RESULTS = Path(__file__).parent / "results" / "threads.json"
CORES = os.cpu_count() or 1
# The background work: None for none, "python" for a pure-Python loop, N for a torch job on N threads.
LOADS = {"nothing else": None, "a Python loop": "python", "torch, 1 thread": 1, f"torch, {CORES} threads": CORES}


def background(kind, counter) -> None:
    """Work forever, counting its rounds in ``counter``."""
    if kind == "python":
        while True:
            sum(range(100_000))
            counter.value += 1
    torch.set_num_threads(kind)
    matrix = torch.randn(384, 384)
    while True:
        matrix = torch.tanh(matrix @ matrix)
        counter.value += 1


def rate(counter, seconds: float) -> float:
    start = counter.value
    time.sleep(seconds)
    return (counter.value - start) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("street"), help="the street dataset (default: street)")
    parser.add_argument("--model", type=Path, help="a PCDMs pipeline folder (default: the bundled model)")
    parser.add_argument("--images", type=int, default=3, help="timed images per row (default 3)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = args.model or bundled_model()
    pipeline = load_pcdms_pipeline(model)
    pipeline.set_progress_bar_config(disable=True)
    pair = open_dataset(args.data, "test")[0]

    def seconds_per_image(threads: int) -> float:
        torch.set_num_threads(threads)
        call = lambda: pipeline(  # noqa: E731
            pair.source_image, pair.target_pose, pair.source_pose, generator=stage_generators(DEFAULT_SEEDS, 1)
        )
        call()  # warm-up
        started = time.perf_counter()
        for _ in range(args.images):
            call()
        return (time.perf_counter() - started) / args.images

    rows = []
    context = multiprocessing.get_context("spawn")
    for name, kind in LOADS.items():
        row = {"other work": name}
        counter, worker = context.Value("q", 0, lock=False), None
        if kind is not None:
            worker = context.Process(target=background, args=(kind, counter), daemon=True)
            worker.start()
            while counter.value == 0:  # a spawned process imports this file, torch and pcdms first
                time.sleep(0.1)
            time.sleep(1)
            row["its rate alone"] = round(rate(counter, 3.0), 1)
        row["default threads"] = default_threads(CORES)
        for threads in sorted({1, CORES}):
            start, started = counter.value, time.perf_counter()
            row[f"s / image, {threads} threads"] = round(seconds_per_image(threads), 3)
            if worker is not None:
                share = (counter.value - start) / (time.perf_counter() - started) / row["its rate alone"]
                row[f"its rate, pcdms on {threads} threads"] = round(share, 3)
        if worker is not None:
            worker.kill()
            worker.join()
        print(row)
        rows.append(row)
    results = {
        "date": datetime.date.today().isoformat(),
        "device": f"CPU ({platform.processor() or platform.machine()}, {CORES} cores)",
        "torch": torch.__version__,
        "model": model.name,
        "images per row": args.images,
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
