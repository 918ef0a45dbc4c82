"""The warp explorer notebook runs under papermill with tiny parameters, training its own
tiny AFDM when no checkpoint is given. (The run notebooks are executed by the sweep
tests in test_sweep.py.)"""

from __future__ import annotations

import json

import pytest

from afdm_lib.sweep import KERNEL, NOTEBOOKS_DIR


@pytest.mark.slow
def test_warp_explorer_runs_on_a_fresh_tiny_afdm(tmp_path):
    import papermill

    output = tmp_path / "warps.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / "warps.ipynb"), str(output), kernel_name=KERNEL,
        parameters={"checkpoint": None, "out": str(tmp_path / "tiny"), "train_size": 48,
                    "epochs": 2, "words": 2},
        progress_bar=False, cwd=str(tmp_path), extra_arguments=["--log-level=ERROR"])
    assert (tmp_path / "tiny" / "checkpoint.pt").exists()
    nb = json.loads(output.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # inputs, 2 grid figures, 2 feature figures, 2 side-by-side figures (one per word),
    # the probe; the explorer's figures live in its Output widgets, not in the cells
    assert len(images) == 8
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "method afdm" in text and "adversarial: relative feature change" in text
    assert "checkpoint probe: loss_clean" in text and "run(s) to explore" in text
    # the explorer's controls were built (a widget view; inert without a front end)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in outputs)
