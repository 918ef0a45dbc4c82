"""``afdm data check``: counts per split, alphabet, image sizes and every problem."""

from __future__ import annotations

import pytest
from fixtures import write_iam, write_manifest

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
    assert main(["data", "check", "iam", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "[train] 7 words" in out and "is empty (0 bytes)" in out
    assert main(["data", "check", "iam", "--root", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset"):
        check.check_dataset("nope", None, out=lambda s: None)
