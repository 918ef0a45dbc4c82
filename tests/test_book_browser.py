"""The book, built from real (tiny) runs and opened in headless Chromium.

The results folder is made by really training the smoke preset's cells (two seeds, and
a second training size for recognition) with ``afdm_lib.train.train``; the book is built
with ``afdm_lib.book.build_book`` into a temporary folder; Chromium (driven by selenium)
checks that the results pages render their tables and plots (every image loads), that
no link inside the book is broken, and keeps a screenshot under ``tests/artifacts/``.
Skipped, with a visible warning, only when Chromium or its driver is not installed
(``make setup`` installs the Debian packages ``chromium`` and ``chromium-driver``).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import torch

ARTIFACTS = Path(__file__).parent / "artifacts"
RESULT_PAGES = ("results-recognition.html", "results-spotting.html")


def _browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "Chromium is not installed (apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


def _configs():
    """The smoke preset's cells, with seeds 0 and 1 (paired tests need pairs) and a
    32-word cut for recognition (so the plots have two training sizes)."""
    from afdm_lib.presets import cell_id, expand

    out = []
    for cell in expand("smoke").cells:
        sizes = [cell.config.train_size]
        if cell.config.task == "recognition":
            sizes.append(32)
        for size in sizes:
            for seed in (0, 1):
                cfg = cell.config.replace(seed=seed, train_size=size, threads=1)
                out.append((cell_id(cfg), cfg))
    return out


def _regimes_records(root: Path) -> None:
    """Records (not trained: the page only reads them) of one complete George Washington
    regime cell beside the results folder, so the regimes page draws its forest plot."""
    from afdm_lib.config import RunConfig
    from afdm_lib.results import make_record, write_json

    for seed in range(2):
        for method, cer in (("none", 0.40), ("random", 0.39), ("afdm", 0.35)):
            cfg = RunConfig(task="recognition", arch="crnn", dataset="gw", method=method,
                            seed=seed, train_size=500, width=0.5).to_dict()
            metrics = {"cer": cer + 0.01 * seed, "wer": 0.6, "train_size": 500,
                       "ended": "converged", "best_step": 20, "plateau": False}
            curve = [{"step": 20, "val_cer": cer, "train_cer": 0.1}]
            name = f"recognition-crnn-gw-n500-{method}-width0.5-s{seed}"
            write_json(root / "runs" / name / "record.json",
                       make_record(cfg, "ok", metrics=metrics, curve=curve, cell_id=name))


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    from afdm_lib.book import build_book
    from afdm_lib.results import write_json
    from afdm_lib.train import train

    torch.set_num_threads(1)
    results = tmp_path_factory.mktemp("results")
    for name, cfg in _configs():
        train(cfg, results / "runs" / name, progress=False)
    write_json(results / "bench.json", {"device": "cpu", "rows": [
        {"arch": "crnn", "method": "none", "train_images_per_s": 100.0},
        {"arch": "crnn", "method": "afdm", "train_images_per_s": 80.0}]})
    _regimes_records(results.parent / "regimes")
    index = build_book(results, output=tmp_path_factory.mktemp("book"))
    assert index.is_file()
    return index.parent


def test_book_has_every_page(book: Path):
    for page in ("intro", "method", "data", "results-recognition", "results-spotting",
                 "regimes", "ablation", "paper-numbers", "warps", "benchmarks", "provenance",
                 "reproduce", "deviations"):
        assert (book / f"{page}.html").is_file(), page
    log = (book.parent / "book-build.log").read_text()
    assert "WARNING" not in log, [line for line in log.splitlines() if "WARNING" in line]
    recognition = (book / "results-recognition.html").read_text()
    assert "Where AFDM helps and where it does not" in recognition
    assert "No results yet" not in recognition
    assert "train_images_per_s" in (book / "benchmarks.html").read_text()
    intro = (book / "intro.html").read_text()
    assert "answer-forest.png" in intro and "regimes.html" in intro


@pytest.fixture(scope="module")
def driver():
    missing = _browser_missing()
    if missing:
        warnings.warn(f"browser test skipped: {missing}", stacklevel=1)
        pytest.skip(f"browser test skipped: {missing}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in ("--headless", "--no-sandbox", "--disable-background-networking",
                 "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        options.add_argument(flag)
    drv = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def _open(driver, page: Path) -> None:
    driver.get(page.as_uri())
    driver.execute_script("return document.readyState")


def _images(driver) -> list[dict]:
    return driver.execute_script(
        "return [...document.images].map(i => ({src: i.src, complete: i.complete, "
        "width: i.naturalWidth}))")


def test_results_pages_render_tables_and_plots(book: Path, driver):
    for name in RESULT_PAGES:
        _open(driver, book / name)
        tables = driver.execute_script("return document.querySelectorAll('main table').length")
        images = [i for i in _images(driver) if "/_images/" in i["src"]]
        assert tables >= 2, f"{name}: {tables} tables"
        # spotting: QbE is undefined on 32 tiny test words (no repeated word), QbS is not
        assert len(images) >= (2 if "recognition" in name else 1), f"{name}: {images}"
        broken = [i["src"] for i in images if not (i["complete"] and i["width"] > 0)]
        assert not broken, f"{name}: images that did not load: {broken}"
        # the best-cell marking and the paired tests are on the page
        text = driver.execute_script("return document.querySelector('main').innerText")
        # one verdict table; the dataset sections link to it instead of repeating it
        assert "verdict table" in text and "(n=2)" in text
        assert "Paired comparison" not in text


# the headers of a table, by the page's JavaScript: one list per table in <main>
TABLE_HEADERS = ("return [...document.querySelectorAll('main table')].map(t => "
                 "[...t.querySelectorAll('th')].map(h => h.innerText.trim()))")


def test_results_pages_open_with_verdict_and_paper_tables(book: Path, driver):
    """Issue 13: a compact verdict table and a paper-shaped table (datasets x sizes as
    columns, methods and AFDM minus each baseline as rows) on both results pages."""
    for name in RESULT_PAGES:
        _open(driver, book / name)
        headers = driver.execute_script(TABLE_HEADERS)
        verdict = [h for h in headers if "smallest detectable difference" in h]
        assert len(verdict) == 1, f"{name}: {headers}"
        assert {"cell", "comparison", "p (Holm)", "verdict"} <= set(verdict[0])
        assert len(verdict[0]) <= 6  # readable: few columns
        paper = driver.execute_script(
            "return [...document.querySelectorAll('main .afdm-paper-table table')].map("
            "t => [...t.querySelectorAll('tbody th')].map(h => h.innerText.trim()))")
        assert paper, f"{name}: no paper-shaped table"
        assert all(rows[:3] == ["none", "random", "afdm"] and "AFDM − none" in rows
                   for rows in paper), paper
        # the verdict table comes first
        text = driver.execute_script("return document.querySelector('main').innerText")
        assert text.index("smallest detectable difference") < text.index(
            "The study in the paper"), name


def test_no_long_list_of_untestable_settings(book: Path, driver):
    """Thin comparisons are one sentence, never a bullet list of more than 5."""
    for name in (*RESULT_PAGES, "intro.html"):
        _open(driver, book / name)
        lists = driver.execute_script(
            "return [...document.querySelectorAll('main ul')].map(u => "
            "[...u.children].map(li => li.innerText))")
        for items in lists:
            thin = [i for i in items if "too few" in i or "fewer than two" in i
                    or "Not tested" in i]
            assert len(thin) <= 5, f"{name}: a list of {len(thin)} untestable settings"


def test_no_interval_leaves_the_metric_range(book: Path, driver):
    """Every interval in a table: a metric's within [0, 1], a signed difference's within
    [-1, 1] (t-intervals over 2 seeds reach far past both unless clipped)."""
    import re

    pattern = re.compile(r"\[([+-]?)(\d+\.\d+), ([+-]?)(\d+\.\d+)\]")
    seen = 0
    for name in (*RESULT_PAGES, "intro.html", "ablation.html"):
        _open(driver, book / name)
        cells = driver.execute_script(
            "return [...document.querySelectorAll('main td')].map(c => c.innerText)")
        for cell in cells:
            for m in pattern.finditer(cell):
                seen += 1
                low = float(m.group(1) + m.group(2))
                high = float(m.group(3) + m.group(4))
                signed = bool(m.group(1) or m.group(3))
                bound = (-1.0, 1.0) if signed else (0.0, 1.0)
                assert bound[0] <= low <= high <= bound[1], f"{name}: {cell}"
    assert seen > 10


def test_equations_render_offline(book: Path, driver):
    """MathJax is copied into the book, so the Method page's equations typeset without
    any network (Chromium runs with background networking off, pages from file://)."""
    import time

    _open(driver, book / "method.html")
    rendered = 0
    for _ in range(50):  # MathJax typesets asynchronously
        rendered = driver.execute_script(
            "return document.querySelectorAll('.MathJax, .MathJax_Display').length")
        if rendered:
            break
        time.sleep(0.1)
    assert rendered > 10, "the equations on method.html were not typeset"


def test_every_image_in_the_book_loads(book: Path, driver):
    for page in sorted(book.glob("*.html")):
        _open(driver, page)
        broken = [i["src"] for i in _images(driver)
                  if i["src"].startswith("file:") and not (i["complete"] and i["width"] > 0)]
        assert not broken, f"{page.name}: images that did not load: {broken}"
    _open(driver, book / "data.html")
    assert len([i for i in _images(driver) if "sample-" in i["src"]]) >= 3
    _open(driver, book / "warps.html")
    assert any("warps-random" in i["src"] for i in _images(driver))
    # the smoke sweep keeps the AFDM checkpoints: the learned warps are drawn
    assert any("warps-learned" in i["src"] for i in _images(driver))


def test_no_broken_internal_links(book: Path, driver):
    broken = []
    ids: dict[Path, str] = {}
    for page in sorted(book.glob("*.html")):
        _open(driver, page)
        hrefs = driver.execute_script(
            "return [...document.querySelectorAll('a[href]')].map(a => a.href)")
        for href in hrefs:
            url = urlparse(href)
            if url.scheme != "file":
                continue
            target = Path(unquote(url.path))
            if not target.exists():
                broken.append(f"{page.name} -> {href}")
                continue
            if url.fragment and target.suffix == ".html":
                text = ids.setdefault(target, target.read_text())
                if f'id="{url.fragment}"' not in text:
                    broken.append(f"{page.name} -> {href} (no such anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_screenshot_of_the_recognition_results(book: Path, driver):
    _open(driver, book / "results-recognition.html")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(int(height), 800), 8000))
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "book-results-recognition.png"
    assert driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
    print(f"\nscreenshot of the book's recognition results: {shot}")


def test_intro_opens_with_the_answer_then_the_forest_plot(book: Path, driver):
    """Issue 37: the answer sentences, then the forest plot image, before any table."""
    _open(driver, book / "intro.html")
    order = driver.execute_script(
        "const main = document.querySelector('main');"
        "const text = main.innerText;"
        "const nodes = [...main.querySelectorAll('p, img, table')];"
        "return nodes.map(n => n.tagName === 'IMG' ? 'IMG:' + n.src : "
        "n.tagName === 'TABLE' ? 'TABLE' : 'P:' + n.innerText.slice(0, 80));")
    answer = next(i for i, n in enumerate(order) if n.startswith("P:This study trained"))
    forest = next(i for i, n in enumerate(order) if "answer-forest.png" in n)
    tables = [i for i, n in enumerate(order) if n == "TABLE"]
    assert answer < forest and (not tables or forest < tables[0]), order[:6]
    text = driver.execute_script("return document.querySelector('main').innerText")
    sentences = text[text.index("This study trained"):].split("\n")[0]
    assert "significantly" in sentences and sentences.count(". ") <= 5
    links = driver.execute_script(
        "return [...document.querySelectorAll('main a')].map(a => a.href)")
    assert any(h.endswith("regimes.html") for h in links)
    images = [i for i in _images(driver) if "answer-forest" in i["src"]]
    assert images and images[0]["complete"] and images[0]["width"] > 800


def test_regimes_page_has_its_forest_plot(book: Path, driver):
    _open(driver, book / "regimes.html")
    images = [i for i in _images(driver) if "regimes-forest" in i["src"]]
    assert images and images[0]["complete"] and images[0]["width"] > 0
    text = driver.execute_script("return document.querySelector('main').innerText")
    # no GW base in this study: the regime records are their own base recipe
    assert "gw, 500 words" in text and "smallest detectable difference" in text


def test_no_page_loads_a_script_from_outside_the_build(book: Path, driver):
    """Issue 37: opened from disk, nothing is fetched and no script is missing; no
    "Loading [MathJax]" box stays on screen."""
    import time

    for page in sorted(book.glob("*.html")):
        _open(driver, page)
        scripts = driver.execute_script(
            "return [...document.querySelectorAll('script[src]')].map(s => s.src)")
        for src in scripts:
            url = urlparse(src)
            assert url.scheme == "file", f"{page.name}: external script {src}"
            assert Path(unquote(url.path)).is_file(), f"{page.name}: missing script {src}"
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        outside = [u for u in fetched if not u.startswith(("file:", "data:", "about:"))]
        assert not outside, f"{page.name}: fetched {outside}"
    _open(driver, book / "method.html")
    time.sleep(2)
    message = driver.execute_script(
        "const m = document.getElementById('MathJax_Message');"
        "return m && m.offsetParent !== null ? m.innerText : ''")
    assert "Loading" not in message
