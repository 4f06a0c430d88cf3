"""benchmarks/gpu_presets.py at its tiny size on the CPU, so that the GPU script cannot rot (issue 20): it builds,
runs a preset eager and under torch.compile (its eager backend: no compiler needed), and writes its results."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "gpu_presets.py"


def test_the_gpu_script_runs_at_tiny_size_and_writes_its_results(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_presets", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "gpu.json"
    returned = script.main(["--tiny", "--presets", "fastest", "--repeats", "1", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    assert written["config"] == "tiny" and written["size"] == "64x128" and "CPU" in written["device"]
    rows = [(row["preset"], row["dtype"], row["variant"]) for row in written["rows"]]
    assert rows == [("fastest", "float32", "eager"), ("fastest", "float32", "compile")]
    for row in written["rows"]:
        assert row["seconds"] > 0 and row["first_call_seconds"] > 0 and row["peak_mib"] >= 0
