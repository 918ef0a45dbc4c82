"""Tables, intervals, paired tests and fragments of afdm_lib.report, on records written
in the real record format (afdm_lib.results.make_record) with known metric values."""

from __future__ import annotations

import functools
import json
import math
import subprocess
from pathlib import Path

import pytest

from afdm_lib import report
from afdm_lib.config import RunConfig
from afdm_lib.report import stats, warp_gallery
from afdm_lib.results import code_version, make_record, write_json

CER = report.TASK_METRICS["recognition"][0]
MAP_QBE = next(m for m in report.TASK_METRICS["spotting"] if m.key == "map_qbe")


def write_run(root: Path, name: str, *, method: str, seed: int, cer: float,
              train_size: int = 100, dataset: str = "digits-bangla", plateau: bool = False,
              status: str = "ok", **config) -> Path:
    cfg = RunConfig(dataset=dataset, method=method, seed=seed, train_size=train_size,
                    **config).to_dict()
    metrics = {"cer": cer, "wer": min(1.0, 2 * cer), "train_size": train_size,
               "plateau": plateau}
    rec = make_record(cfg, status, metrics=metrics if status == "ok" else None,
                      error=None if status == "ok" else "DivergedError: boom",
                      curve=[{"step": 10, "val_cer": 0.9}, {"step": 20, "val_cer": cer}],
                      cell_id=name)
    write_json(root / "runs" / name / "record.json", rec)
    return root / "runs" / name


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """Five seeds at 100 words: afdm always 0.05 better than none (plus noise), random
    equal to none; 3 seeds at 300 words where afdm is no better."""
    root = tmp_path / "results"
    noise = [0.004, -0.003, 0.001, 0.0, -0.002]
    for seed in range(5):
        base = 0.30 + 0.02 * seed
        write_run(root, f"none-100-{seed}", method="none", seed=seed, cer=base)
        write_run(root, f"random-100-{seed}", method="random", seed=seed, cer=base + noise[seed])
        write_run(root, f"afdm-100-{seed}", method="afdm", seed=seed,
                  cer=base - 0.05 + noise[seed], plateau=seed == 4)
    for seed in range(3):
        write_run(root, f"none-300-{seed}", method="none", seed=seed, train_size=300,
                  cer=0.10 + 0.01 * seed)
        write_run(root, f"afdm-300-{seed}", method="afdm", seed=seed, train_size=300,
                  cer=0.10 + 0.01 * seed + [0.01, -0.01, 0.005][seed])
    return root


def test_t_interval_matches_the_formula():
    mean, half = report.t_interval([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    # t_{0.975, 2} = 4.302653; sd = 1
    assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    mean, half = report.t_interval([0.5])
    assert mean == 0.5 and math.isnan(half)


def test_holm_adjustment():
    assert report.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = report.holm([0.2, math.nan])
    assert adjusted[0] == pytest.approx(0.2) and math.isnan(adjusted[1])


def test_aggregate_means_intervals_and_plateau(study: Path):
    runs = report.load_runs(study)
    assert len(runs.ok) == 21 and runs.failed.empty and not runs.unreadable
    agg = report.aggregate(runs.ok, "cer")
    row = agg[(agg["method"] == "none") & (agg["train_size"] == 100)].iloc[0]
    values = [0.30 + 0.02 * s for s in range(5)]
    assert row["n"] == 5 and row["mean"] == pytest.approx(sum(values) / 5)
    assert row["half"] == pytest.approx(report.t_interval(values)[1])
    afdm = agg[(agg["method"] == "afdm") & (agg["train_size"] == 100)].iloc[0]
    assert afdm["plateau"] == 1 and afdm["seeds"] == [0, 1, 2, 3, 4]
    assert set(agg["setting"]) == {""}


def test_paired_tests_pair_by_seed_and_give_verdicts(study: Path):
    runs = report.load_runs(study)
    tests = report.paired_tests(runs.ok, CER)
    t = tests.set_index(["baseline", "train_size"])
    assert t.loc[("none", 100), "n"] == 5
    assert t.loc[("none", 100), "diff"] == pytest.approx(-0.05, abs=1e-9)
    assert t.loc[("none", 100), "wins"] == 5
    assert t.loc[("none", 100), "p_t"] < 1e-4
    assert t.loc[("none", 100), "verdict"] == "AFDM better"
    # afdm - random is exactly -0.05 for every seed: t is undefined, Wilcoxon stands in
    # (5 pairs, all one way: exact two-sided p = 2/32), not significant at 0.05
    assert math.isnan(t.loc[("random", 100), "p_t"])
    assert t.loc[("random", 100), "p_wilcoxon"] == pytest.approx(0.0625)
    assert t.loc[("random", 100), "verdict"] == "no significant difference"
    assert t.loc[("none", 300), "n"] == 3
    assert t.loc[("none", 300), "verdict"] == "no significant difference"
    # no random run at 300 words: nothing to pair
    assert ("random", 300) not in t.index
    sentences = " ".join(report.verdicts(tests, CER))
    assert "does not significantly beat `none`" in sentences
    assert "digits-bangla at 300 training words" in sentences
    assert "significantly beats `none` on CER in 1 of 2" in sentences


def test_pairs_need_the_same_seed(study: Path):
    # an afdm run with a seed no baseline has is not paired
    write_run(study, "afdm-100-9", method="afdm", seed=9, cer=0.0)
    tests = report.paired_tests(report.load_runs(study).ok, CER)
    assert tests[(tests["baseline"] == "none") & (tests["train_size"] == 100)]["n"].item() == 5


def test_ablation_runs_get_a_setting_and_pair_with_the_main_baseline(study: Path):
    for seed in range(3):
        write_run(study, f"afdm-g2-{seed}", method="afdm", seed=seed, cer=0.2, groups=2)
    runs = report.load_runs(study)
    ablation = runs.ok[runs.ok["setting"] != ""]
    assert set(ablation["setting"]) == {"groups=2"} and len(ablation) == 3
    tests = report.paired_tests(runs.ok, CER)
    g2 = tests[tests["setting"] == "groups=2"]
    # groups does not matter to `none`; `random` runs used groups=4, so no pair there
    assert list(g2["baseline"]) == ["none"] and g2["n"].item() == 3
    table = report.summary_table(report.aggregate(runs.ok, "cer"), CER)
    assert "groups=2" in table and "main" in table


def test_summary_table_marks_the_best_mean(study: Path):
    agg = report.aggregate(report.load_runs(study).ok, "cer")
    table = report.summary_table(agg, CER)
    row_100 = next(line for line in table.splitlines() if line.startswith("| 100 "))
    cells = [c.strip() for c in row_100.strip("|").split("|")]
    assert cells[0] == "100"
    none_cell, random_cell, afdm_cell = cells[1:]
    assert afdm_cell.startswith("**") and "(n=5)" in afdm_cell
    assert not none_cell.startswith("**") and not random_cell.startswith("**")
    # higher is better for mAP: the same numbers mark the other end
    flipped = report.summary_table(agg, MAP_QBE)
    assert next(line for line in flipped.splitlines()
                if line.startswith("| 100 ")).split("|")[3].strip().startswith("**")


def test_failed_and_unreadable_records_are_reported(tmp_path: Path):
    root = tmp_path / "r"
    write_run(root, "ok", method="none", seed=0, cer=0.2)
    write_run(root, "bad", method="afdm", seed=0, cer=0.0, status="failed")
    (root / "runs" / "broken").mkdir(parents=True)
    (root / "runs" / "broken" / "record.json").write_text("{not json")
    runs = report.load_runs(root)
    assert len(runs.ok) == 1 and len(runs.failed) == 1
    assert len(runs.unreadable) == 1 and "broken/record.json" in runs.unreadable[0]
    text = report.problems_fragment(runs)
    assert "1 runs failed" in text and "DivergedError: boom" in text
    assert "unreadable JSON" in text


def test_missing_results_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(report.ReportError, match="nope: results folder does not exist"):
        report.load_runs(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(report.ReportError, match="not a folder"):
        report.load_runs(tmp_path / "file")


def test_empty_folder_says_no_results_yet(tmp_path: Path):
    runs = report.load_runs(tmp_path)
    assert runs.empty
    text = report.results_fragment(runs, "recognition", tmp_path / "fig", "/fig")
    assert "No results yet" in text
    assert "No paired comparison" in report.verdicts(report.paired_tests(runs.ok, CER),
                                                     CER)[0]


def test_results_fragment_writes_plots_and_tables(study: Path, tmp_path: Path):
    runs = report.load_runs(study)
    figures = tmp_path / "fig"
    text = report.results_fragment(runs, "recognition", figures, "/_generated/fig")
    pngs = sorted(p.name for p in figures.glob("*.png"))
    assert "recognition-digits-bangla-cer-crnn.png" in pngs
    assert "recognition-digits-bangla-curves-100.png" in pngs
    for name in pngs:
        assert (figures / name).read_bytes()[:4] == b"\x89PNG"
        assert f"/_generated/fig/{name}" in text
    assert "Where AFDM helps and where it does not" in text
    assert "The study in the paper's shape" in text and 'colspan="2"' in text
    assert "1 of 21 runs never left the plateau" in text
    # spotting has no records here
    assert "No results yet" in report.results_fragment(runs, "spotting", figures, "/f")


def test_parameters_table_lists_every_default_as_this_study():
    text = report.parameters_fragment()
    for name in ("insert_after", "groups", "max_shift", "p_warp", "afdm_lr", "lr"):
        assert f"`{name}`" in text
    rows = [line for line in text.splitlines()[2:] if line.startswith("|")]
    assert rows and all(line.rstrip(" |").endswith("this study") for line in rows)
    assert "paper" not in text.lower()
    assert f"`{RunConfig().max_shift}`" in text


def test_deviations_follow_the_config_defaults():
    text = report.deviations_fragment()
    c = RunConfig()
    assert f"after conv block {c.insert_after}" in text
    assert f"{c.warmup_steps} recognizer steps alone" in text


def test_bench_fragment_forms_and_errors(tmp_path: Path):
    assert "No benchmark yet" in report.bench_fragment(None)
    (tmp_path / "results" / "quick").mkdir(parents=True)
    path = tmp_path / "results" / "bench.json"
    path.write_text(json.dumps({"device": "cpu", "rows": [
        {"arch": "crnn", "method": "none", "images_per_s": 123.456},
        {"arch": "crnn", "method": "afdm", "images_per_s": 98.7}]}))
    # found next to a results folder, as `afdm bench` writes results/bench.json
    assert report.find_bench(tmp_path / "results" / "quick") == path
    text = report.bench_fragment(path)
    assert "| device | cpu |" in text and "123.5" in text and "### rows" in text
    path.write_text("[1, 2")
    with pytest.raises(report.ReportError, match="bench.json: cannot read"):
        report.bench_fragment(path)


def test_paper_numbers_table_is_empty():
    text = report.paper_numbers_fragment()
    rows = [line for line in text.splitlines() if line.startswith("| ")][2:]
    assert rows == ["| – | – | – | – | – | – |"]
    assert "Empty on purpose" in text


def test_identity_warp_leaves_the_image_alone():
    import numpy as np

    from afdm_lib.afdm import regular_grid

    img = np.random.default_rng(0).random((16, 40)).astype(np.float32)
    out = warp_gallery.warp_image(img, regular_grid(3, 3).numpy(), 3, 3)
    assert np.allclose(out, img, atol=1e-4)
    moved = warp_gallery.warp_image(img, regular_grid(3, 3).numpy() + 0.1, 3, 3)
    assert not np.allclose(moved, img, atol=1e-2)


def test_tables_notebook_runs_on_a_results_folder(study: Path, tmp_path: Path):
    """notebooks/tables.ipynb is a thin view on this module: it must execute."""
    import papermill

    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "tables.ipynb"
    out = tmp_path / "tables.ipynb"
    papermill.execute_notebook(str(notebook), str(out), parameters={"results": str(study)},
                               cwd=str(tmp_path), progress_bar=False, kernel_name="python3")
    text = out.read_text()
    assert "AFDM better" in text and "0.3" in text
    assert (tmp_path / "tables-figures" / "recognition-digits-bangla-cer.png").is_file()


def test_headline_for_the_introduction(study: Path, tmp_path: Path):
    from afdm_lib.report.answer import study_tests
    from afdm_lib.report.tables import verdict_summary, verdict_table

    (tests,) = study_tests(report.load_runs(study))
    assert tests.task == "recognition" and tests.metric.label == "CER"
    text = verdict_summary(tests.tests, tests.metric) + "\n" + verdict_table(tests.tests,
                                                                          tests.metric)
    # one compact verdict table: 100 words vs none and random, 300 words vs none
    rows = [line for line in text.splitlines() if line.startswith("| digits-bangla")]
    assert len(rows) == 3
    assert "**AFDM better**" in rows[0] and "afdm − none" in rows[0]
    assert "no significant difference" in rows[2]
    # one sentence per baseline above the table, counting the table's verdicts
    assert "- Against `none`, in 2 tested settings: AFDM significantly better in 1, " \
        "significantly worse in 0, no significant difference in 1; where there is no " \
        "significant difference, AFDM is better by at most" in text
    assert text.index("- Against `none`") < text.index("| digits-bangla")
    sentences = " ".join(report.headline_sentences(report.load_runs(study).ok, "recognition"))
    assert "significantly beats `none` on CER in 1 of 2" in sentences
    (tmp_path / "empty").mkdir()
    assert study_tests(report.load_runs(tmp_path / "empty")) == []


def test_provenance_names_the_preset_and_warns_about_quick(tmp_path):
    root = tmp_path / "results"
    for i, preset in enumerate(("quick", "cpu")):
        run = write_run(root, f"{preset}-run", method="none", seed=i, cer=0.1)
        rec = json.loads((run / "record.json").read_text())
        write_json(run / "record.json", {**rec, "preset": preset})
    text = report.provenance(report.load_runs(root))
    assert "Sweep presets: `cpu`, `quick`." in text
    assert "less converged" in text
    cpu_only = tmp_path / "cpu"
    write_run(cpu_only, "a", method="none", seed=0, cer=0.1)
    assert "less converged" not in report.provenance(report.load_runs(cpu_only))


def test_rows_where_nothing_was_learned_are_called_out(tmp_path):
    root = tmp_path / "results"
    for seed in range(2):
        for method, cer in (("none", 0.78), ("random", 0.80), ("afdm", 0.81)):
            write_run(root, f"{method}-200-{seed}", method=method, seed=seed, cer=cer,
                      train_size=200, dataset="synth-bangla")
        for method, cer in (("none", 0.3), ("random", 0.6), ("afdm", 0.7)):
            write_run(root, f"{method}-1000-{seed}", method=method, seed=seed, cer=cer,
                      train_size=1000, dataset="synth-bangla")
    agg = report.aggregate(report.load_runs(root).ok, "cer")
    sentence = report.weak_rows_sentence(agg, "synth-bangla")
    assert sentence.startswith("On synth-bangla at 200 training words no method")
    assert "1000" not in sentence  # one method got below 0.5 there
    text = report.results_fragment(report.load_runs(root), "recognition", tmp_path / "fig",
                                   "fig")
    assert "no method reaches a mean CER below 0.5" in text


# --- issue 13 / 17: old records, intervals, verdict and paper tables, flags ---------
def _edit_record(run: Path, **changes) -> None:
    """Rewrite a record in place: ``config=`` / ``metrics=`` / ``environment=`` merge,
    ``drop_config=[keys]`` removes keys (an older record format)."""
    rec = json.loads((run / "record.json").read_text())
    for key in changes.pop("drop_config", []):
        rec["config"].pop(key, None)
    for part, values in changes.items():
        rec.setdefault(part, {}).update(values)
    write_json(run / "record.json", rec)


def test_an_old_record_without_newer_keys_reads_as_the_defaults(tmp_path: Path):
    # seeds 0 and 1 of `none` were written before lr_warmup_steps / lr_decay_steps /
    # afdm_penalty existed; read as RunConfig.with_defaults they are the same setting as
    # the new runs, so all three pairs match (in results/cpu this hid an "AFDM worse")
    root = tmp_path / "results"
    for seed in range(3):
        base = 0.8 + 0.01 * seed
        run = write_run(root, f"none-{seed}", method="none", seed=seed, cer=base)
        if seed < 2:
            _edit_record(run, drop_config=["lr_warmup_steps", "lr_decay_steps",
                                           "afdm_penalty"])
        write_run(root, f"afdm-{seed}", method="afdm", seed=seed, cer=base - 0.1)
    runs = report.load_runs(root)
    assert set(runs.ok["setting"]) == {""}
    old = runs.ok[runs.ok["path"].str.endswith("none-0")].iloc[0]
    assert old["config.lr_decay_steps"] == RunConfig().lr_decay_steps
    tests = report.paired_tests(runs.ok, CER)
    assert tests["n"].tolist() == [3]
    # a key whose absence means the older behaviour takes its legacy value: a record
    # without `protocol` ran protocol 1 and is never pooled with protocol 2
    _edit_record(root / "runs" / "none-0", drop_config=["protocol"])
    runs = report.load_runs(root)
    old = runs.ok[runs.ok["path"].str.endswith("none-0")].iloc[0]
    assert old["config.protocol"] == 1 and old["setting"] == "protocol=1"
    assert report.paired_tests(runs.ok, CER)["n"].tolist() == [2]
    # the newest protocol is the main row even where old runs are the majority
    for seed in (1, 2):
        _edit_record(root / "runs" / f"none-{seed}", drop_config=["protocol"])
        _edit_record(root / "runs" / f"afdm-{seed}", drop_config=["protocol"])
    runs = report.load_runs(root)
    main = runs.ok[runs.ok["setting"] == ""]
    assert main["path"].str.endswith("afdm-0").sum() == 1 and len(main) == 1


def test_intervals_stay_inside_the_metric_range(tmp_path: Path):
    mean, low, high, clipped = report.clipped_interval([0.01, 0.2], 0.0, 1.0)
    assert clipped and low == 0.0 and high <= 1.0 and mean == pytest.approx(0.105)
    assert report.clipped_interval([0.5, 0.52, 0.51], 0, 1)[3] is False
    # a CER above 1 (insertions) widens the range to it instead of cutting the mean off
    assert report.clipped_interval([0.9, 1.4], 0, 1)[2] >= 1.4
    root = tmp_path / "r"
    for seed, cer in enumerate((0.01, 0.3)):
        write_run(root, f"none-{seed}", method="none", seed=seed, cer=cer)
    agg = report.aggregate(report.load_runs(root).ok, "cer")
    row = agg.iloc[0]
    assert row["low"] == 0.0 and row["clipped"] and row["half"] > row["mean"]
    table = report.summary_table(agg, CER)
    assert "[0.000, " in table and "†" in table and "(n=2)" in table


def test_verdict_table_is_compact_with_bounds_and_grouped_thin_rows(study: Path):
    # a thin comparison: one random seed at 300 words
    write_run(study, "random-300-0", method="random", seed=0, train_size=300, cer=0.1)
    runs = report.load_runs(study)
    tests = report.paired_tests(runs.ok, CER)
    text = report.verdict_table(tests, CER)
    rows = [line for line in text.splitlines() if line.startswith("| digits-bangla")]
    assert len(rows) == 3  # 100 vs none, 100 vs random, 300 vs none
    assert "smallest detectable difference" in text
    row_300 = next(r for r in rows if "| digits-bangla, 300 words |" in r)
    cells = [c.strip() for c in row_300.strip("|").split("|")]
    assert len(cells) == 6  # cell, comparison, difference, p, detectable, verdict
    t = tests.set_index(["baseline", "train_size"]).loc[("none", 300)]
    assert cells[4] == f"±{t['diff_half']:.3f}"
    # "AFDM is not better than none by more than X": X is the interval's lower end
    assert cells[5].endswith(f"AFDM better by at most {-t['diff_low']:.3f} (95%)")
    assert -t["diff_low"] > 0
    assert cells[2].endswith("(n=3)")
    assert text.count("Not tested, fewer than two seed pairs (1 comparisons)") == 1
    assert "digits-bangla at 300 training words" in text
    sentence = report.bound_sentence(t, CER, "none")
    assert sentence.startswith("AFDM is not better than `none` by more than")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def _commit_file(repo: Path, rel: str, text: str) -> str:
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).write_text(text)
    _git(repo, "add", rel)
    _git(repo, "commit", "-qm", rel)
    return _git(repo, "rev-parse", "HEAD")


def test_pairs_across_commits_that_changed_only_records_or_the_report_are_not_flagged(
        study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # the study commits each record as it finishes, so the runs of one cell carry many
    # commits: only a change of the code a run executes makes a pair "across commits"
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    first = _commit_file(repo, "afdm_lib/train.py", "step = 1\n")
    records_only = _commit_file(repo, "results/cpu/runs/x/record.json", "{}")
    report_only = _commit_file(repo, "afdm_lib/report/pages.py", "page = 1\n")
    trainer_changed = _commit_file(repo, "afdm_lib/train.py", "step = 2\n")
    version = functools.partial(code_version, repo=repo)
    assert version(first) == version(records_only) == version(report_only)
    assert version(trainer_changed) != version(first)
    assert version("f" * 40) == "f" * 40  # not in this history: the commit itself
    monkeypatch.setattr(stats, "code_version", version)
    for seed, (mine, theirs) in enumerate([(first, report_only), (first, trainer_changed),
                                           (records_only, records_only)]):
        _edit_record(study / "runs" / f"afdm-100-{seed}", environment={"git_commit": mine})
        _edit_record(study / "runs" / f"none-100-{seed}", environment={"git_commit": theirs})
    tests = report.paired_tests(report.load_runs(study).ok, CER)
    tests = tests.set_index(["baseline", "train_size"])
    # seed 1 ran other trainer code; seed 0's commits differ only in the report; seeds
    # 3-4 keep the fixture's commit on both sides
    assert tests.loc[("none", 100), "cross_commit"] == 1


def test_capped_runs_and_cross_commit_pairs_are_flagged(study: Path):
    _edit_record(study / "runs" / "afdm-300-1", metrics={"ended": "cap"})
    for seed in range(2):
        _edit_record(study / "runs" / f"none-100-{seed}",
                     environment={"git_commit": "0" * 40})
    runs = report.load_runs(study)
    assert set(runs.ok["ended"]) == {"cap", "budget"}  # missing reads as "budget"
    tests = report.paired_tests(runs.ok, CER).set_index(["baseline", "train_size"])
    assert tests.loc[("none", 300), "verdict"] == "no verdict: step cap hit"
    assert math.isnan(tests.loc[("none", 300), "p_holm"])
    assert tests.loc[("none", 100), "cross_commit"] == 2
    text = report.verdict_table(report.paired_tests(runs.ok, CER), CER)
    assert "no verdict: step cap hit (1 runs)" in text
    assert "⚠ 2/5 pairs across commits" in text
    page = report.results_fragment(runs, "recognition", study / "fig", "fig")
    assert "## Runs that hit the step cap" in page
    assert "(n=3) (1 at step cap)" in report.summary_table(
        report.aggregate(runs.ok, CER), CER)


def test_paper_shaped_table(study: Path):
    runs = report.load_runs(study)
    agg = report.aggregate(runs.ok, CER)
    tests = report.paired_tests(runs.ok, CER)
    html = report.paper_table(agg, tests, CER)
    assert '<th colspan="2">digits-bangla</th>' in html
    assert "<th>100</th><th>300</th>" in html
    body = html.split("<tbody>")[1]
    heads = [part.split("</th>")[0] for part in body.split("<tr><th>")[1:]]
    assert heads == ["none", "random", "afdm", "AFDM − none", "AFDM − random"]
    # afdm beats none at 100 words (significant): bold and starred
    none_row = body.split("<tr><th>AFDM − none</th>")[1].split("</tr>")[0]
    assert "<strong>-0.050" in none_row and " *</strong>" in none_row
    assert "(n=5)" in body and "(n=3)" in body


def test_spotting_headline_is_qbs_unless_qbe_has_enough_queries(tmp_path: Path):
    root = tmp_path / "results"
    for seed in range(3):
        for method, qbs, qbe in (("none", 0.80, 0.50), ("afdm", 0.70, 0.90)):
            run = write_run(root, f"{method}-{seed}", method=method, seed=seed, cer=0.1,
                            task="spotting", arch="phocnet")
            _edit_record(run, metrics={"map_qbs": qbs + 0.01 * seed,
                                       "map_qbe": qbe + 0.01 * seed ** 2,
                                       "n_queries_qbe": 15, "n_queries_qbs": 290})
    runs = report.load_runs(root)
    spot = runs.ok[runs.ok["task"] == "spotting"]
    assert report.headline_metric(spot, "spotting").key == "map_qbs"
    page = report.results_fragment(runs, "spotting", tmp_path / "fig", "fig")
    assert "only 15 QbE queries, fewer than 50" in page
    assert page.index("On QbS mAP") < page.index("### QbE mAP")
    no_qbs = spot.drop(columns=["metrics.map_qbs"])
    assert report.headline_metric(no_qbs, "spotting") is None  # 15 < MIN_QBE_QUERIES
    no_qbs = no_qbs.assign(**{"metrics.n_queries_qbe": report.MIN_QBE_QUERIES})
    assert report.headline_metric(no_qbs, "spotting").key == "map_qbe"


def test_train_and_validation_curves_side_by_side(tmp_path: Path):
    root = tmp_path / "results"
    for seed in range(2):
        for method in ("none", "afdm"):
            run = write_run(root, f"{method}-{seed}", method=method, seed=seed, cer=0.2)
            _edit_record(run)
            rec = json.loads((run / "record.json").read_text())
            rec["curve"] = [{"step": s, "val_cer": 0.5 - s / 100, "train_cer": 0.4 - s / 80}
                            for s in (10, 20, 30)]
            write_json(run / "record.json", rec)
    runs = report.load_runs(root)
    path = report.plot_curves(runs.ok, "digits-bangla", 100, tmp_path / "c.png")
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"
    import matplotlib.image

    three = matplotlib.image.imread(path).shape
    # the old single-panel form: validation only
    old = report.plot_curves(report.load_runs(_single_panel(tmp_path)).ok, "digits-bangla",
                             100, tmp_path / "v.png")
    one = matplotlib.image.imread(old).shape
    # drawn large (issue 37): train and validation side by side, the gap below them, so
    # the three panels take about twice the single panel's area, never a thumbnail strip
    assert three[0] > 1.5 * one[0] and three[1] >= one[1] >= 800


def _single_panel(tmp_path: Path) -> Path:
    root = tmp_path / "old"
    write_run(root, "none-0", method="none", seed=0, cer=0.2)
    return root


def test_provenance_lists_commits_and_lock_files(study: Path):
    _edit_record(study / "runs" / "none-100-0",
                 environment={"lock_sha256": "ab" * 32, "git_commit": "c" * 40})
    text = report.provenance(report.load_runs(study))
    # make_record stamps today's lock file into the other records: two hashes
    assert "`cccccccccc`" in text and "Dependency lock file" in text
    assert "`abababababab`" in text


def test_ablation_page(tmp_path: Path, study: Path):
    # the ablation preset runs afdm only, in its own folder beside the study's results,
    # one key varied at a time from a base (groups 4, max_shift 0.1) that is the study's
    # own afdm recipe: the base runs and `none` come from the study's folder (same cell)
    results = tmp_path / "study-results"
    for seed in range(3):
        write_run(results / "cpu", f"none-{seed}", method="none", seed=seed, cer=0.30)
        # the base varies by seed as max_shift=0.05 does: paired by seed, their
        # difference is exactly +0.010 at every seed
        write_run(results / "cpu", f"afdm-{seed}", method="afdm", seed=seed,
                  cer=0.28 + 0.01 * seed)
        # a study recipe that drifted from the ablation's (another lr): never its base
        write_run(results / "cpu", f"afdm-lr-{seed}", method="afdm", seed=seed, cer=0.9,
                  lr=1e-4)
        runs = [write_run(results / "ablation", f"afdm-g2-{seed}", method="afdm", seed=seed,
                          cer=0.25, groups=2),
                write_run(results / "ablation", f"afdm-s2-{seed}", method="afdm", seed=seed,
                          cer=0.35, max_shift=0.2),
                write_run(results / "ablation", f"afdm-s05-{seed}", method="afdm",
                          seed=seed, cer=0.29 + 0.01 * seed, max_shift=0.05),
                write_run(results / "ablation", f"afdm-ln-{seed}", method="afdm", seed=seed,
                          cer=0.31, afdm_loc_norm=not RunConfig().afdm_loc_norm)]
        for run in runs:
            rec = json.loads((run / "record.json").read_text())
            if run.name.startswith("afdm-s2-"):  # a saturated, input-blind adversary
                rec["metrics"].update(saturated=0.8 + 0.1 * seed, diversity=0.01 * seed)
            write_json(run / "record.json", {**rec, "preset": "ablation"})
    found = report.find_ablation(results / "cpu")
    assert found == [results / "ablation"]
    assert report.find_ablation(results / "ablation") == []
    cpu = report.load_runs(results / "cpu")
    text = report.ablation_fragment(cpu, tmp_path / "fig", "fig", found)
    assert "### `groups`" in text and "### `max_shift`" in text
    assert "### `afdm_loc_norm`" in text
    assert "### `p_warp`" not in text  # not varied
    assert "4 (base)" in text and "0.1 (base)" in text
    shift = text.split("### `max_shift`")[1]
    assert [line.split("|")[1].strip() for line in shift.splitlines()
            if line.startswith("| 0")] == ["0.05", "0.1 (base)", "0.2"]
    assert "-0.050 [-0.050, -0.050] (n=3)" in text  # groups=2 minus none, every seed
    assert "`none` at the base (the results folder's runs of this cell): 0.300" in text
    assert "0.900" not in text  # the drifted study runs are not the base
    assert "0.290 [0.265, 0.315] (n=3)" in text  # the study's matching runs are
    # each setting minus the base, paired by seed (the column that says which knob
    # matters); the base's own row has no such difference
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[3:6]]
            for line in shift.splitlines() if line.startswith("| 0")}
    assert rows["0.05"][2] == "+0.010 [+0.010, +0.010] (n=3)"
    assert rows["0.2"][2].startswith("+0.060 [") and rows["0.2"][2].endswith("(n=3)")
    assert rows["0.1 (base)"][2] == "–"
    # the adversary probe at the end, seed means; "–" where the records carry none
    probe = {line.split("|")[1].strip(): line.split("|")[6].strip()
             for line in shift.splitlines() if line.startswith("| 0")}
    assert probe == {"0.05": "–", "0.1 (base)": "–", "0.2": "0.90 / 0.01"}
    assert "-0.040 [-0.065, -0.015] (n=3)" in text.split("### `groups`")[1]
    assert "Base runs: 3 of the study's own `afdm` runs of this cell." in text
    assert any(p.name.startswith("ablation-") for p in (tmp_path / "fig").glob("*.png"))
    # ablation-preset records inside the study's folder: on the ablation page, not on
    # the results pages
    mixed = tmp_path / "mixed"
    for seed in range(2):
        for name, groups in (("base", RunConfig().groups), ("g2", 2), ("g8", 8)):
            run = write_run(mixed, f"afdm-{name}-{seed}", method="afdm", seed=seed,
                            cer=0.2, groups=groups)
            rec = json.loads((run / "record.json").read_text())
            write_json(run / "record.json", {**rec, "preset": "ablation"})
    loaded = report.load_runs(mixed)
    assert "No results yet" in report.results_fragment(loaded, "recognition",
                                                       tmp_path / "fig2", "fig")
    assert "### `groups`" in report.ablation_fragment(loaded, tmp_path / "fig3", "fig")
    assert "No runs of the `ablation` preset" in report.ablation_fragment(
        report.load_runs(study), tmp_path / "fig", "fig")


def test_steps_decision_pairs_each_setting_with_the_study_and_none(tmp_path: Path):
    # the `steps` preset varies afdm_steps on its own cell, in its own folder: its runs
    # join the ablation page, pair by seed with the study's afdm (afdm_steps 3) and none
    # runs, and the decision table gives the run's CPU time over none's
    results = tmp_path / "results"
    for seed in range(3):
        for method, cer, seconds, steps in (("none", 0.30, 100.0, 1000),
                                            ("afdm", 0.28, 300.0, 1200)):
            run = write_run(results / "cpu", f"{method}-{seed}", method=method, seed=seed,
                            cer=cer + 0.01 * seed, afdm_steps=3)
            _edit_metrics(run, train_seconds=seconds * (seed + 1), steps=steps)
        run = write_run(results / "steps", f"afdm-k1-{seed}", method="afdm", seed=seed,
                        cer=0.26 + 0.01 * seed, afdm_steps=1)
        _edit_metrics(run, train_seconds=150.0 * (seed + 1), steps=1100, saturated=0.1,
                      diversity=0.3)
        rec = json.loads((run / "record.json").read_text())
        write_json(run / "record.json", {**rec, "preset": "steps"})
    found = report.find_ablation(results / "cpu")
    assert found == [results / "steps"]
    cpu = report.load_runs(results / "cpu")
    page = report.ablation_fragment(cpu, tmp_path / "fig", "fig", found)
    assert "### `afdm_steps`" in page and "3 (base)" in page
    table = report.steps_decision_fragment(cpu, found)
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[3:9]]
            for line in table.splitlines() if line.startswith("| digits-bangla")}
    assert set(rows) == {"1", "3 (base)"}
    assert rows["1"][1] == "-0.020 [-0.020, -0.020] (n=3)"  # minus the base
    assert rows["1"][2] == "-0.040 [-0.040, -0.040] (n=3)"  # minus none
    assert rows["1"][3] == "0.10 / 0.30"
    assert rows["1"][4] == "1.50x" and rows["3 (base)"][4] == "3.00x"
    assert rows["1"][5] == "1.10x" and rows["3 (base)"][5] == "1.20x"
    assert rows["3 (base)"][1] == "–"
    # a study folder without such runs says so
    assert "No run varies `afdm_steps`" in report.steps_decision_fragment(cpu)


def _edit_metrics(run: Path, **metrics) -> None:
    rec = json.loads((run / "record.json").read_text())
    rec["metrics"].update(metrics)
    write_json(run / "record.json", rec)


def test_committed_spotting_cell_at_1000_words_reads_every_pair():
    """results/cpu-v1 (the fixed-budget records, once the published book): spotting
    digits-bangla at 1,000 words has `none` seeds written before lr_warmup_steps/
    lr_decay_steps existed and `afdm` seeds written after; read with defaults, every seed
    pairs (issue 13: before, only 1 pair did)."""
    root = Path(__file__).resolve().parents[1] / "results" / "cpu-v1"
    runs = report.load_runs(root)
    spot = report.study_runs(runs.ok[runs.ok["task"] == "spotting"])
    cell = spot[(spot["dataset"] == "digits-bangla") & (spot["train_size"] == 1000)
                & (spot["setting"] == "")]
    seeds = {m: set(cell[cell["method"] == m]["seed"]) for m in ("none", "afdm")}
    if not seeds["none"] or not seeds["afdm"]:
        pytest.skip("results/cpu-v1 holds no spotting digits-bangla cell at 1,000 words")
    metric = report.headline_metric(spot, "spotting")
    assert metric.key == "map_qbs"
    tests = report.paired_tests(spot, metric)
    row = tests[(tests["dataset"] == "digits-bangla") & (tests["train_size"] == 1000)
                & (tests["baseline"] == "none") & (tests["setting"] == "")]
    assert row["n"].item() == len(seeds["none"] & seeds["afdm"]) >= 3


def test_capacity_section_reads_the_gap_at_the_best_point(tmp_path: Path):
    # the capacity preset's wider `none` runs live beside the study's folder; the
    # study's own width comes from the study's runs of the same cell. Each width's row
    # must take the training-subset CER at the best validation step, not the last one.
    results = tmp_path / "results"

    def run(folder: str, name: str, seed: int, width: float, train: float, val: float):
        cfg = RunConfig(dataset="digits-latin", method="none", seed=seed, train_size=200,
                        width=width).to_dict()
        curve = [{"step": 100, "val_cer": 0.9, "train_cer": 0.9},
                 {"step": 200, "val_cer": val, "train_cer": train},
                 {"step": 300, "val_cer": val + 0.05, "train_cer": 0.0}]  # over-fitting
        rec = make_record(cfg, "ok", metrics={"cer": val + 0.01, "wer": 0.3,
                                              "train_size": 200, "best_step": 200,
                                              "ended": "converged"},
                          curve=curve, sizes={"parameters": int(width * 1e6)}, cell_id=name)
        write_json(results / folder / "runs" / name / "record.json", rec)

    for seed in range(3):
        run("cpu", f"none-{seed}", seed, 0.125, 0.01, 0.10)
        run("capacity", f"none-w25-{seed}", seed, 0.25, 0.02 + 0.01 * seed, 0.08)
        run("capacity", f"none-w5-{seed}", seed, 0.5, 0.005, 0.07)
    found = report.find_capacity(results / "cpu")
    assert found == results / "capacity"
    text = report.capacity_fragment(report.load_runs(results / "cpu"), tmp_path / "fig",
                                    "fig", found)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()
            if line.startswith("| 0")}
    assert list(rows) == ["0.125", "0.25", "0.5"]
    assert "125,000" in rows["0.125"] and "500,000" in rows["0.5"]
    assert "0.100 [0.100, 0.100] (n=3)" in rows["0.125"]  # validation at the best step
    assert "0.030 [" in rows["0.25"] and "+0.050 [" in rows["0.25"]  # train, gap
    assert "| 200 |" in rows["0.5"]
    assert "width 0.125: validation CER 0.100 against 0.010" in text
    assert any(p.name.startswith("capacity-") for p in (tmp_path / "fig").glob("*.png"))
    assert "No runs of the `capacity` preset" in report.capacity_fragment(
        report.load_runs(results / "cpu"), tmp_path / "fig", "fig", None)


MINI_PRESET = """
[mini]
description = "two cells of two methods, two seeds"
seeds = [0, 1]
methods = ["none", "afdm"]
[mini.config]
max_steps = 50
warmup_steps = 10
[[mini.grid]]
datasets = ["digits-bangla"]
train_sizes = [100]
[[mini.grid]]
datasets = ["digits-latin"]
train_sizes = [100]
"""


def test_coverage_counts_every_planned_run_by_state(tmp_path: Path):
    from afdm_lib.presets import expand

    presets = tmp_path / "presets.toml"
    presets.write_text(MINI_PRESET)
    root = tmp_path / "results"
    cells = {c.cell_id: c.config for c in expand("mini", presets).cells}
    assert len(cells) == 8

    def write(cell: str, status: str = "ok", ended: str = "converged", **changes) -> None:
        cfg = {**cells[cell].to_dict(), **changes}
        rec = make_record(cfg, status, metrics={"cer": 0.1, "ended": ended}
                          if status == "ok" else None,
                          error=None if status == "ok" else "DivergedError: boom",
                          cell_id=cell)
        write_json(root / "runs" / cell / "record.json", rec)

    write("recognition-crnn-digits-bangla-n100-none-s0")
    write("recognition-crnn-digits-bangla-n100-none-s1", ended="cap")
    write("recognition-crnn-digits-bangla-n100-afdm-s0", status="failed")
    write("recognition-crnn-digits-bangla-n100-afdm-s1", lr=1e-4)  # the preset was retuned
    (root / "runs" / "recognition-crnn-digits-latin-n100-none-s0").mkdir(parents=True)
    write_json(root / "sweep.json", {"preset": "mini"})

    assert report.sweep_preset(root) == "mini"
    table = report.coverage_table(root, presets_file=presets).set_index(
        ["dataset", "method"])
    assert table.loc[("digits-bangla", "none"), ["finished", "capped"]].tolist() == [2, 1]
    assert table.loc[("digits-bangla", "afdm"), ["failed", "other config"]].tolist() == [1, 1]
    assert table.loc[("digits-latin", "none"), ["started", "not started"]].tolist() == [1, 1]
    assert table.loc[("digits-latin", "afdm"), "not started"] == 2
    assert table["seeds"].map(len).sum() == 8
    assert (table[list(report.coverage.STATES)].sum(axis=1)
            - table["capped"]).tolist() == [2, 2, 2, 2]  # each run counted once

    text = report.coverage_fragment(root, presets_file=presets)
    assert ("(preset `mini`): 2 of 8 planned runs finished, 1 of them at the step cap, "
            "1 failed, 1 other config, 1 started, 3 not started.") in text
    # the capped group is listed although it is complete: it gets no verdict
    assert "| recognition | digits-bangla | 100 words | none | – | 0, 1 | 2 | 1 |" in text
    # without a preset there is nothing to compare against, said in words
    other = tmp_path / "single"
    (other / "runs").mkdir(parents=True)
    assert "no sweep preset recorded" in report.coverage_fragment(other)


def test_coverage_of_the_committed_study_matches_its_records():
    # every committed cpu record is a finished run of the cpu preset's current config, but
    # the `afdm` records made before the afdm_steps decision (Deviations), stale in that
    # key alone until they are re-run: a retuned preset that would make more of the
    # committed study stale goes red here
    from afdm_lib.presets import expand
    from afdm_lib.sweep import comparable

    root = Path(__file__).resolve().parents[1] / "results" / "cpu"
    table, runs = report.coverage_table(root), report.load_runs(root)
    assert report.sweep_preset(root) == "cpu"
    assert set(table[table["other config"] > 0]["method"]) <= {"afdm"}
    for cell in expand("cpu").cells:
        record = json.loads((root / "runs" / cell.cell_id / "record.json").read_text())
        mine, planned = comparable(record["config"]), comparable(cell.config.to_dict())
        changed = {k for k in planned if mine.get(k) != planned[k]}
        assert changed <= {"afdm_steps"}, (cell.cell_id, changed)
        assert changed == set() or (mine["afdm_steps"], planned["afdm_steps"]) == (3, 1)
    assert table["finished"].sum() + table["other config"].sum() == len(runs.ok)
    assert table["failed"].sum() == len(runs.failed)


# --- issue 37: verification, the answer and its forest plot, sizes in words ------------
def _verification(root: Path, statuses: dict[str, str]) -> None:
    """A verification.json in the format `afdm verify` writes (schema 1)."""
    records = {cell: {"status": s, "steps": 400, "points": 2,
                      "first_difference": None if s == "match" else
                      {"step": 200, "key": "val_cer", "recorded": 0.5, "replayed": 0.51},
                      "error": None} for cell, s in statuses.items()}
    write_json(root / "verification.json", {"schema": 1, "commit": "a" * 40,
                                            "code_version": "code:x", "created": "2025-01-01",
                                            "records": records})


def test_cross_commit_pairs_are_flagged_only_where_a_replay_differs(study: Path):
    # seeds 0 and 1 of `none` at 100 words ran other code than their `afdm` partners
    for seed in range(2):
        _edit_record(study / "runs" / f"none-100-{seed}", environment={"git_commit": "0" * 40})
    tests = report.paired_tests(report.load_runs(study).ok, CER).set_index(
        ["baseline", "train_size"])
    assert tests.loc[("none", 100), "cross_commit"] == 2  # no verification: today's flag
    # both records of both pairs replay exactly: bookkeeping, no warning
    _verification(study, {f"{m}-100-{s}": "match" for m in ("none", "afdm") for s in range(5)})
    runs = report.load_runs(study)
    assert set(runs.ok["verification"].dropna()) == {"match"}
    tests = report.paired_tests(runs.ok, CER)
    assert tests.set_index(["baseline", "train_size"]).loc[("none", 100), "cross_commit"] == 0
    assert "across commits" not in report.verdict_table(tests, CER)
    # one record of a pair differs on replay (and one is not replayed at all): flagged
    statuses = {f"{m}-100-{s}": "match" for m in ("none", "afdm") for s in range(5)}
    statuses["none-100-0"] = "differs"
    del statuses["afdm-100-1"]
    _verification(study, statuses)
    tests = report.paired_tests(report.load_runs(study).ok, CER)
    assert tests.set_index(["baseline", "train_size"]).loc[("none", 100), "cross_commit"] == 2
    assert "⚠ 2/5 pairs across commits" in report.verdict_table(tests, CER)
    # the book's lines: the provenance table lists the record that differs
    from afdm_lib.report import verification

    ok = report.load_runs(study).ok
    text = verification.verification_fragment(study, ok)
    assert "`none-100-0`" in text and "val_cer" in text and "0.51" in text
    line = verification.verification_line(study, ok)
    assert line.startswith("*Verified:* 8 of 21 records") and "1 differ" in line
    assert "12 were not replayed" in line
    # a record of another CPU kind that matched its own code's replay here: said so
    data = json.loads((study / "verification.json").read_text())
    data["records"]["none-100-1"].update(reference="own-code replay", same_cpu=False)
    write_json(study / "verification.json", data)
    text = verification.verification_fragment(study, report.load_runs(study).ok)
    assert "1 of the matching records were made on another kind of CPU" in text
    line = verification.verification_line(study, report.load_runs(study).ok)
    assert "(1 of them made on another kind of CPU" in line


def test_a_malformed_verification_file_is_a_clear_error(study: Path):
    write_json(study / "verification.json", {"schema": 1, "records": {"x": {"status": "?"}}})
    with pytest.raises(report.ReportError, match="verification.json"):
        report.load_runs(study)


def test_forest_rows_put_afdm_better_on_the_right(study: Path, tmp_path: Path):
    from afdm_lib.report import forest

    tests = report.paired_tests(report.load_runs(study).ok, CER)
    rows = forest.forest_rows(tests, CER, lambda r: f"{r['dataset']} {r['train_size']}")
    row = next(r for r in rows if r.baseline == "none" and r.label.endswith("100"))
    # afdm's CER is 0.05 lower: a gain of +0.05, its interval on the right of 0
    gain, low, high = row.gain
    assert gain == pytest.approx(0.05, abs=1e-9) and 0 < low <= gain <= high
    assert row.significant and row.n == 5
    # for mAP higher is better: the same difference stays positive
    up = forest.ForestRow("x", "none", MAP_QBE, 0.05, 0.01, 0.09, 3, "AFDM better")
    assert up.gain == (0.05, 0.01, 0.09)
    path = forest.plot_forest(rows + [up], tmp_path / "forest.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert forest.plot_forest([], tmp_path / "none.png") is None


def test_answer_sentences_come_from_the_tests(study: Path, tmp_path: Path):
    from afdm_lib.report import answer

    runs = report.load_runs(study)
    sentences = answer.answer_sentences(runs)
    assert 3 <= len(sentences) <= 5
    text = " ".join(sentences)
    # 100 words: better than none; random and 300 words: no significant difference
    assert "significantly better in 1 of them: digits-bangla at 100 words against `none` " \
        "(-0.050 CER)" in text
    assert "cannot be told apart" in text and "</regimes>" in text
    # the regime names the adversary's updates per step its afdm runs used (the study's
    # default, as the fixture writes them)
    assert "1 adversary update per recognizer step" in text
    fragment = answer.answer_fragment(runs, tmp_path / "fig", "fig")
    assert fragment.index("significantly better") < fragment.index("fig/answer-forest.png")
    assert (tmp_path / "fig" / "answer-forest.png").is_file()


def test_sizes_read_as_words():
    from afdm_lib.report.tables import size_words

    assert size_words(500.0) == "500"
    assert size_words(float("nan")) == "full fold" and size_words(None) == "full fold"
    assert size_words(3280, full=True, dataset="gw") == "full fold (3,280 words)"


def test_cost_fragment_gives_the_iteration_ratio_and_the_runs_ratios():
    from afdm_lib.report.bench_page import cost_fragment

    data = {"afdm_steps": 3, "afdm_ratio": 1, "models": "crnn_w0.25",
            "crnn_w0.25_plain_step_ms": 10.0, "crnn_w0.25_afdm_rec_step_ms": 11.0,
            "crnn_w0.25_afdm_adv_step_ms": 8.0, "crnn_w0.25_afdm_adv_reuse_step_ms": 6.0,
            "run_cost_records": "results/cpu",
            "run_cost_recognition_gw_500_w0.25_afdm_over_none_time": 2.99,
            "run_cost_recognition_gw_500_w0.25_afdm_over_none_steps": 0.92,
            "run_cost_recognition_gw_500_w0.25_afdm_seeds": 5}
    text = cost_fragment(data)
    row = next(line for line in text.splitlines() if line.startswith("| crnn_w0.25"))
    # (11 + 3 x 8) / 10 = 3.50 at the study's setting; (11 + 6 / 2) / 10 = 1.40
    assert row.split("|")[6].strip() == "3.50" and row.split("|")[7].strip() == "1.40"
    assert "| recognition gw 500 w0.25 | 2.99 | 0.92 | 5 | – |" in text


def test_published_numbers_name_where_they_were_read(study: Path):
    from afdm_lib.report.published import PUBLISHED, published_fragment

    text = published_fragment(report.load_runs(study))
    for _, _, source, said in PUBLISHED:
        assert said in text and source in text
        if any(ch.isdigit() for ch in said.split("(")[0]):
            # a number: from a paper's table, or saying what its source is instead
            assert "table" in source.lower() or "not a paper" in source
    assert "96.94" in text and "ssudholt/phocnet" in text
