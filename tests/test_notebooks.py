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


@pytest.mark.slow
def test_the_afdm_in_your_model_tutorial_runs(tmp_path):
    # the tutorial's custom backbone, AFDM inserted through the public API, a few rounds
    import papermill

    output = tmp_path / "afdm_in_your_model.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / "afdm_in_your_model.ipynb"), str(output), kernel_name=KERNEL,
        parameters={"warmup_steps": 10, "rounds": 10, "train_size": 64, "test_size": 16},
        progress_bar=False, cwd=str(tmp_path), extra_arguments=["--log-level=ERROR"])
    nb = json.loads(output.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "AFDMHook(after 'layer2', state='frozen'" in text
    assert "20 steps in" in text and "test CER" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the losses, and the warps of three test words


def test_the_tutorial_is_committed_with_its_outputs_and_in_the_book():
    # the book renders notebooks without executing them (book/_config.yml): the page
    # shows the outputs stored in the notebook, so they must be there and error-free
    from pathlib import Path

    import yaml

    source = NOTEBOOKS_DIR / "afdm_in_your_model.ipynb"
    nb = json.loads(source.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
    book = Path(__file__).resolve().parents[1] / "book"
    assert (book / "afdm_in_your_model.ipynb").resolve() == source.resolve()
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    using = next(p for p in toc["parts"] if p["caption"] == "Using it")
    assert {"file": "afdm_in_your_model"} in using["chapters"]
