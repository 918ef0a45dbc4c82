"""``afdm data check``: counts per split, alphabet, image sizes and every problem."""

from __future__ import annotations

import re
import shutil

import pytest
from fixtures import SHARED_GW_MISSING, shared_gw, write_gw_folds, write_iam, write_manifest

from afdm_lib.cli import main
from afdm_lib.data import DataError, check


def run_check(name, root, **kw):
    lines: list[str] = []
    code = check.check_dataset(name, root, out=lines.append, **kw)
    return code, "\n".join(lines)


def test_check_iam_prints_counts_and_problems(tmp_path):
    exp = write_iam(tmp_path)
    code, text = run_check("iam", str(tmp_path))
    assert code == 1
    assert "[train] 7 words, 2 writers/fonts" in text
    assert "[val] 3 words" in text and "[test] 3 words" in text
    assert "image height: min 30" in text
    assert "alphabet of the training split (18 characters)" in text
    assert "test: 3 labels use characters outside it" in text
    assert "5 problems:" in text
    for word_id in exp["bad"]:
        assert f"{word_id}.png" in text
    assert f"words.txt:{exp['malformed_line']}: malformed line" in text


def test_check_a_clean_copy_returns_0(tmp_path):
    write_manifest(tmp_path)
    lines = (tmp_path / "manifest.tsv").read_text().splitlines()
    (tmp_path / "manifest.tsv").write_text("\n".join(lines[:5]) + "\n")  # the good rows
    code, text = run_check("manifest", str(tmp_path))
    assert code == 0 and "0 problems" in text and "[train] 2 words" in text


def test_check_samples_generated_datasets(monkeypatch):
    from afdm_lib.data.synth import script_fonts

    try:
        script_fonts("devanagari")
    except DataError as exc:
        pytest.skip(f"system fonts/word lists missing: {exc}")
    monkeypatch.setattr(check, "SAMPLE_GENERATED", 4)
    code, text = run_check("synth-devanagari", None)
    assert code == 0 and "(first 4 of" in text and "writers/fonts" in text


def test_cli_data_check(tmp_path, capsys):
    write_iam(tmp_path)
    assert main(["data", "check", "iam", "--data-root", str(tmp_path)]) == 1
    assert "[train] 7 words" in capsys.readouterr().out
    assert main(["data", "check", "iam", "--root", str(tmp_path)]) == 1  # the old name
    out = capsys.readouterr().out
    assert "[train] 7 words" in out and "is empty (0 bytes)" in out
    assert main(["data", "check", "iam", "--root", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset"):
        check.check_dataset("nope", None, out=lambda s: None)


def test_check_lists_bad_samples_without_split_lists(tmp_path):
    exp = write_iam(tmp_path)
    for name in ("trainset.txt", "validationset1.txt", "validationset2.txt", "testset.txt"):
        (tmp_path / name).unlink()
    shutil.rmtree(tmp_path / "splits")
    code, text = run_check("iam", str(tmp_path))
    assert code == 1
    assert "[all words, no split lists] 13 words" in text
    assert "iam: no train split file" in text and "iam: no test split file" in text
    for word_id in exp["bad"]:
        assert f"{word_id}.png" in text
    assert f"words.txt:{exp['malformed_line']}: malformed line" in text


def test_check_reports_every_fold(tmp_path, monkeypatch):
    monkeypatch.setenv("AFDM_CACHE", str(tmp_path / "cache"))
    write_gw_folds(tmp_path / "gw")
    code, text = run_check("gw", str(tmp_path / "gw"))
    assert code == 1 and "3 problems:" in text  # the fixture's three faulty spots
    for fold in (2, 3, 4):
        assert f"fold {fold}: train 5, val 1, test 2" in text
    assert "fold 1: train 5, val 1, test 2" in text
    assert "the 4 test splits hold 8 words and are disjoint" in text
    code, text = run_check("gw", str(tmp_path / "gw"), fold=3)  # one fold, as asked
    assert "folds (" not in text and "[test] 2 words" in text


def test_check_the_shared_gw_copy(tmp_path, monkeypatch, capsys):
    if shared_gw() is None:
        pytest.skip(SHARED_GW_MISSING)
    monkeypatch.setenv("AFDM_CACHE", str(tmp_path / "cache"))
    assert main(["data", "check", "gw"]) == 0
    text = capsys.readouterr().out
    assert "4860 words in all: train 3280, val 365, test 1215" in text
    for fold in (1, 2, 3, 4):
        assert f"fold {fold}: train 3280, val 365, test 1215" in text
    assert "the 4 test splits hold 4860 words and are disjoint" in text
    assert "alphabet of the training split (36 characters)" in text
    assert text.rstrip().endswith("0 problems")


def test_train_help_names_every_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    options = text[text.index("options:"):]
    # one entry per option: "  --flag ..." then its help, possibly wrapped
    entries = re.split(r"\n  (?=-)", options)[1:]
    assert len(entries) > 40
    for entry in entries:
        if entry.startswith("-h"):
            continue
        assert "default" in entry, entry
    assert "--lr LR" in options and "with --task spotting: 0.0005" in options
