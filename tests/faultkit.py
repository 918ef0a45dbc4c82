"""Helpers for the reliability and fault-injection tests: tiny run flags, a manifest
dataset with deliberate faults, and real ``afdm`` processes to kill."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]

# a tiny recognition run (about a second of training on one core)
TINY = ["--dataset", "digits-devanagari", "--train-size", "64", "--val-size", "16",
        "--test-size", "16", "--epochs", "1", "--batch-size", "16", "--width", "0.125",
        "--warmup-steps", "1", "--afdm-warmup-steps", "1", "--threads", "1", "--quiet"]

# manifest runs: a handful of words, two batches (add the size: --fraction 1.0)
MANIFEST_RUN = ["--dataset", "manifest", "--val-size", "4", "--test-size", "4", "--epochs", "1",
                "--batch-size", "4", "--width", "0.125", "--threads", "1", "--quiet"]
TRAIN_WORDS = ["ab", "ba", "abc", "cab", "bca", "aab", "cc", "acb"]
VAL_WORDS = ["abc", "ca"]
TEST_WORDS = ["abz", "zz", "cab"]  # 'z' is not in the training alphabet: 3 unknown chars


def word_png(path: Path, seed: int = 0, width: int = 60, height: int = 30) -> None:
    """A scanned-looking word: dark strokes on light paper."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("L", (width, height), 235)
    draw = ImageDraw.Draw(im)
    x = 4 + seed % 3
    while x < width - 8:
        draw.line([(x, height - 6), (x + 5, 5 + seed % 4), (x + 9, height - 8)], fill=40,
                  width=2)
        x += 11
    im.save(path)


def truncated_png(path: Path) -> None:
    """A PNG cut short: the header reads, the pixels do not."""
    word_png(path, width=200, height=60)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# fault name -> (manifest row, how it is made, what the message says)
FAULTS: dict[str, tuple[str, Callable[[Path], None] | None, str]] = {
    "corrupt image": ("img/corrupt.png\tabc\ttrain\tw9", lambda p: p.write_bytes(
        b"<html>404 not found</html>"), "is not readable"),
    "empty image": ("img/empty.png\tabc\ttrain\tw9", lambda p: p.write_bytes(b""),
                    "is empty (0 bytes)"),
    "truncated image": ("img/truncated.png\tabc\ttrain\tw9", truncated_png,
                        "is not readable"),
    "missing image": ("img/missing.png\tabc\ttrain\tw9", None, "image not found"),
    "malformed line": ("img/w0.png", None, "malformed row: 1 fields, the header has 4"),
    "unknown split": ("img/w0.png\tabc\tholdout\tw9", None, "unknown split 'holdout'"),
}


def write_manifest(root: Path, faults: list[str] | tuple[str, ...] = (),
                   train_words: list[str] | None = None) -> dict[str, int]:
    """``root/manifest.tsv`` with good words and the given faults (one row each, after
    the good training rows). Returns {fault: line number}."""
    train_words = TRAIN_WORDS if train_words is None else train_words
    rows = ["image\ttext\tsplit\twriter"]
    k = 0
    for split, words in (("train", train_words), ("val", VAL_WORDS), ("test", TEST_WORDS)):
        for text in words:
            word_png(root / "img" / f"w{k}.png", seed=k, width=30 + 10 * len(text))
            rows.append(f"img/w{k}.png\t{text}\t{split}\tw{k % 3}")
            k += 1
    lines = {}
    for name in faults:
        row, make, _ = FAULTS[name]
        if make is not None:
            target = root / row.split("\t")[0]
            target.parent.mkdir(parents=True, exist_ok=True)
            make(target)
        rows.append(row)
        lines[name] = len(rows)
    (root / "manifest.tsv").write_text("\n".join(rows) + "\n")
    return lines


# --- real processes ------------------------------------------------------------------
def afdm_command(*args: str) -> list[str]:
    """The ``afdm`` command of this interpreter's environment."""
    return [sys.executable, "-m", "afdm_lib.cli", *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TQDM_DISABLE="1",
               PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def start(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(afdm_command(*args), cwd=cwd or REPO, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(afdm_command(*args), cwd=REPO, env=child_env(), capture_output=True,
                          text=True, timeout=timeout)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen | None, what: str,
             timeout: float = 240, poll: float = 0.01) -> None:
    """Poll ``condition``; fail clearly if the process ended first or time ran out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended (rc {proc.returncode}) before {what}:\n"
                                 f"{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextlib.contextmanager
def reaped(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Make sure a started process (and its session) is gone when the test ends."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def sigkill(proc: subprocess.Popen) -> None:
    """SIGKILL the process itself (not its children: they must cope on their own)."""
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
