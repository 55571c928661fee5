"""The documentation site: a strict mkdocs build, and the built site opened from disk in Chromium.

The build needs the ``docs`` extra (``pip install ".[docs]"``); without it these tests are skipped.
The browser test drives Debian's headless Chromium through the DevTools protocol over a pipe
(``--remote-debugging-pipe``: no port, no extra package). Without Chromium it is skipped locally,
but under CI (``CI=true``) a missing Chromium is a failure: ``.ci/run`` installs it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built with ``mkdocs build --strict`` into a temporary folder."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install '.[docs]'")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed: pip install '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stderr[-4000:]}"
    return out


def test_strict_build_has_every_formula_anchor_and_the_plots(site):
    from fnnjax.verify import formula_page

    for n in range(1, 29):
        page, anchor = str(formula_page(n)).removeprefix("docs/").split("#")
        html = (site / page.replace(".md", ".html")).read_text()
        assert f'id="{anchor}"' in html, f"F{n}: no heading with anchor #{anchor} in {page}"
    for png in (ROOT / "benchmarks" / "results").rglob("*.png"):
        assert (site / png.relative_to(ROOT)).read_bytes() == png.read_bytes()
    assert (site / "javascripts" / "katex" / "katex.min.js").exists()
    assert (site / "search" / "search_index.js").exists()  # the offline plugin: search from file://
    for page in site.rglob("*.html"):  # nothing is fetched from the network: scripts, styles, fonts
        remote = re.findall(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="(?:https?:)?//[^"]*"', page.read_text())
        assert not remote, f"{page.relative_to(site)} loads {remote[:3]}"


def test_api_pages_link_f_numbers_and_sphinx_roles(site):
    backprop = (site / "api" / "backprop.html").read_text()
    assert 'href="../formulas/backprop.html#f10"' in backprop and 'href="../formulas/backprop.html#f13"' in backprop
    losses = (site / "api" / "losses.html").read_text()
    # ":class:`MLP`" in a docstring becomes a link to the MLP's entry on the model page
    assert re.search(r'<a href="model\.html#fnnjax\.MLP"[^>]*><code>MLP</code></a>', losses)
    for page in (site / "api").glob("*.html"):
        text = page.read_text()
        assert not re.search(r":(func|class|data|mod|meth|attr|exc):<code>", text), f"raw Sphinx role in {page.name}"


def test_links_between_pages_resolve(site):
    """Every relative href of every page points to a file of the site, and its #anchor exists there."""
    ids: dict[Path, set[str]] = {}
    broken = []
    pages = sorted(site.rglob("*.html"))

    def anchors(path: Path) -> set[str]:
        if path not in ids:
            ids[path] = set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))
        return ids[path]

    for page in pages:
        if page.name == "404.html":  # served from the site's root by a web server, never opened from disk
            continue
        for href in re.findall(r'\bhref="([^"]+)"', page.read_text()):
            url = urlparse(href)
            if url.scheme or href.startswith(("//", "mailto:")):
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {href}")
            elif url.fragment and target.suffix == ".html" and unquote(url.fragment) not in anchors(target):
                broken.append(f"{page.relative_to(site)}: {href} (no such anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken[:30])


# ------------------------------------------------------------------------------------------------
# Links both ways: formulas <-> checks <-> API entries


def _hooks():
    """docs/hooks.py as a module (its map of API objects to formulas, its search-text cleaner)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fnnjax_docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(html: str) -> str:
    """The text of some HTML (highlighted code is split into spans)."""
    return re.sub(r"<[^>]+>", "", html)


def _section(html: str, anchor: str) -> str:
    """The HTML from the heading with id ``anchor`` to the next heading of the same or a higher level."""
    match = re.search(rf'<h([1-6]) id="{re.escape(anchor)}"', html)
    assert match, f"no heading #{anchor}"
    level = int(match.group(1))
    end = re.compile(rf"<h[1-{level}][ >]").search(html, match.end())
    return html[match.start() : end.start() if end else len(html)]


def test_each_check_has_an_entry_with_its_formula_and_source(site):
    from fnnjax.verify import all_checks
    from fnnjax.verify.formulas import check_page, formula_page

    checks = (site / "checks.html").read_text()
    assert "\\&lt;" not in checks and "\\|" not in checks  # criteria such as "<= 1e-12" read as written
    for c in all_checks():
        page, anchor = check_page(c.id).removeprefix("docs/").split("#")
        assert page == "checks.md" and anchor == c.id.lower()
        entry = _section(checks, anchor)
        formula, f_anchor = str(formula_page(c.number)).removeprefix("docs/").split("#")
        assert f'href="{formula.replace(".md", ".html")}#{f_anchor}"' in entry, f"{c.id} does not link its formula"
        for part in ("Claim.", "Evidence.", "Criterion.", "Measured", f"fnnjax verify --only {c.id}"):
            assert part in entry, f"{c.id}: no {part!r}"
        assert re.search(r"<details[^>]*>\s*<summary>Source: verify/formulas/_checks_\w+\.py, line \d+", entry), c.id
        assert f"def {c.fn.__name__}(" in _text(entry), f"{c.id}: its source is not shown"


def test_formula_pages_link_each_of_their_checks(site):
    from fnnjax.verify import all_checks, formula_page

    for c in all_checks():
        page, anchor = str(formula_page(c.number)).removeprefix("docs/").split("#")
        section = _section((site / page.replace(".md", ".html")).read_text(), anchor)
        assert f'href="../checks.html#{c.id.lower()}"' in section, f"F{c.number}'s section does not link {c.id}"


def test_api_entries_show_source_formulas_and_checks(site):
    from fnnjax.verify import all_checks

    hooks = _hooks()
    objects = hooks.formula_objects()
    assert set(objects["fnnjax.backprop"]) >= {12, 13, 16} and 11 in objects["fnnjax.deltas"]
    pages = {p: p.read_text() for p in (site / "api").glob("*.html")}
    shown = 0
    for name, numbers in objects.items():
        found = [html for html in pages.values() if f'id="{name}"' in html]
        if not found:  # an object the API pages do not render (a constant shown in a table, say)
            continue
        entry = _section(found[0], name)
        proof = re.search(r'<p class="fnnjax-proof">(.*?)</p>', entry, re.S)
        assert proof, f"{name}: no formulas/checks line"
        for n in numbers:
            assert re.search(rf'href="\.\./formulas/\w+\.html#f{n}"', proof.group(1)), f"{name}: no link to F{n}"
        for c in all_checks():
            if c.number in numbers:
                assert f'href="../checks.html#{c.id.lower()}"' in proof.group(1), f"{name}: no link to {c.id}"
        shown += 1
    assert shown >= 20
    backprop = _section(pages[site / "api" / "backprop.html"], "fnnjax.backprop")
    assert "Source code in" in backprop and "fnnjax/_backprop.py" in backprop
    assert "def backprop(" in _text(backprop)


def test_verify_list_and_markdown_report_name_each_checks_entry(capsys):
    from fnnjax.cli import main

    assert main(["verify", "--list", "--only", "F11"]) == 0
    line = capsys.readouterr().out.splitlines()[0].split()
    assert line[:3] == ["F11-hidden-deltas", "docs/formulas/backprop.md#f11", "docs/checks.md#f11-hidden-deltas"]
    from fnnjax import verify

    failing = verify.Check("F11-wrong", "a claim", "a method", lambda *, seed, quick: verify.Outcome({}, "x", False))
    result = verify.run_suite([failing], progress=False)
    assert "| F11-wrong | `docs/formulas/backprop.md#f11` | `docs/checks.md#f11-wrong` |" in verify.render_markdown(
        result
    )
    assert "    check:    docs/checks.md#f11-wrong" in verify.render_table(result)


def test_search_index_holds_no_latex(site):
    index = json.loads((site / "search" / "search_index.json").read_text())
    inline = (site / "search" / "search_index.js").read_text()
    assert inline == "var __index = " + json.dumps(index, ensure_ascii=False, separators=(",", ":"))
    raw = re.compile(r"\\\(|\\\[|\$\$|\\(?:frac|delta|mathcal|partial|sum|hat|lVert)\b|\$\\")
    leaks = [f"{d['location']}: {raw.search(d['text']).group(0)}" for d in index["docs"] if raw.search(d["text"])]
    assert not leaks, leaks[:10]
    f10 = next(d for d in index["docs"] if d["location"] == "formulas/backprop.html#f10")
    assert "δ^(L) = (∂ L)/(∂ z^(L))" in f10["text"]
    assert _hooks().plain_math(r"W^{(l)} \in \mathbb{R}^{M_l \times M_{l-1}}") == "W^(l) ∈ R^(M_l × M_(l-1))"


def test_home_page_shows_a_short_example(site):
    home = (site / "index.html").read_text()
    example = home[home.index('id="a-short-example"') :]
    blocks = [_text(b) for b in re.findall(r'<div class="highlight"><pre>.*?</pre>', example, re.S)]
    assert len(blocks) >= 2 and "fnnjax.backprop(mlp, params, x, y)" in blocks[0]
    assert blocks[1].strip().endswith("True")  # what it prints follows it


def test_table_code_stays_whole_and_plots_open_full_size(site):
    css = (site / "stylesheets" / "fnnjax.css").read_text()
    assert re.search(r"td code,[^{]*\{[^}]*white-space: nowrap", css)
    assert 'href="stylesheets/fnnjax.css"' in (site / "index.html").read_text()
    modes = (site / "benchmarks" / "modes.html").read_text()
    plots = re.findall(r'<a class="fnnjax-plot[^"]*" href="([^"]+)"[^>]*><img [^>]*src="([^"]+)"', modes)
    assert len(plots) == 3 and all(href == src for href, src in plots), plots


# ------------------------------------------------------------------------------------------------
# Chromium over the DevTools protocol


def _chromium() -> str | None:
    for name in CHROMIUM:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out, NUL-framed JSON)."""

    def __init__(self, executable: str, profile: str):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-default-browser-check",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]

        # Chromium reads commands on fd 3 and writes on fd 4: bash moves the pipe ends there (from
        # copies at 10 or above, so that no end is already 3 or 4 when the other one is moved)
        r, w = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        move = f'exec "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", move, "bash", *args],
            pass_fds=(r, w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(r)
        os.close(w)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._responses: dict[int, dict] = {}
        self.events: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self._from_browser, 65536)
            if not chunk:
                break
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                with self._cond:
                    if "id" in message:
                        self._responses[message["id"]] = message
                    else:
                        self.events.append(message)
                    self._cond.notify_all()

    def send(self, method: str, session: str | None = None, timeout: float = 30, **params) -> dict:
        """Send one command and wait for its result."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._next_id not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"Chromium did not answer {method} within {timeout} s")
                self._cond.wait(left)
            response = self._responses.pop(self._next_id)
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response.get("result", {})

    def wait_for(self, method: str, session: str, after: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(e.get("method") == method and e.get("sessionId") == session for e in self.events[after:]):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {method} within {timeout} s")
                self._cond.wait(left)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Chromium is not installed; .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium); CI runs this test")
    with tempfile.TemporaryDirectory() as profile:
        b = Browser(executable, profile)
        try:
            yield b
        finally:
            b.close()


def _open(browser: Browser, path: Path) -> tuple[str, list[dict], int]:
    """Open ``path`` (file://) in a new tab, wait until loaded and typeset; return the session and
    the events index where it began."""
    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
    session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    start = len(browser.events)
    for domain in ("Page", "Runtime", "Log"):
        browser.send(f"{domain}.enable", session)
    browser.send("Page.navigate", session, url=path.as_uri())
    browser.wait_for("Page.loadEventFired", session, start)
    return session, browser.events, start


def _evaluate(browser: Browser, session: str, expression: str):
    result = browser.send("Runtime.evaluate", session, expression=expression, returnByValue=True, awaitPromise=True)
    if "exceptionDetails" in result:
        raise RuntimeError(result["exceptionDetails"])
    return result["result"].get("value")


def _errors(events: list[dict], session: str, start: int) -> list[str]:
    found = []
    for e in events[start:]:
        if e.get("sessionId") != session:
            continue
        if e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"):
            found.append(" ".join(str(a.get("value", a.get("description", ""))) for a in e["params"]["args"]))
        elif e.get("method") == "Runtime.exceptionThrown":
            found.append(e["params"]["exceptionDetails"].get("text", "exception"))
        elif e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error":
            found.append(f"{e['params']['entry'].get('url', '')}: {e['params']['entry']['text']}")
    return found


_SETTLE = """new Promise(resolve => {
  const done = () => document.querySelectorAll('.arithmatex').length === 0
    || document.querySelectorAll('.arithmatex .katex').length > 0;
  const t0 = Date.now();
  (function poll() { if (done() || Date.now() - t0 > 10000) resolve(true); else setTimeout(poll, 50); })();
})"""


def test_formulas_page_shows_typeset_math_offline(site, browser):
    session, events, start = _open(browser, site / "formulas" / "backprop.html")
    _evaluate(browser, session, _SETTLE)
    math = _evaluate(browser, session, "document.querySelectorAll('.arithmatex').length")
    typeset = _evaluate(browser, session, "document.querySelectorAll('.arithmatex .katex').length")
    text = _evaluate(browser, session, "document.querySelector('article').innerText")
    assert math > 50 and typeset == math, f"{typeset} of {math} formulas typeset"
    # KaTeX keeps the TeX source only in a hidden MathML annotation, which innerText leaves out
    assert "\\frac" not in text and "$$" not in text and "\\(" not in text and "\\delta" not in text
    assert _evaluate(browser, session, "!!document.getElementById('f10')")
    fonts = _evaluate(browser, session, "document.fonts.status")
    assert fonts == "loaded"
    assert not _errors(events, session, start), _errors(events, session, start)


def test_tutorial_page_shows_its_plot_and_links_resolve(site, browser):
    session, events, start = _open(browser, site / "tutorials" / "forward-vs-reverse.html")
    _evaluate(browser, session, _SETTLE)
    images = _evaluate(
        browser,
        session,
        """Array.from(document.querySelectorAll('article img')).map(
        img => [img.getAttribute('src'), img.complete, img.naturalWidth])""",
    )
    plots = [i for i in images if i[0].endswith(".png")]
    assert plots and all(complete and width > 0 for _, complete, width in plots), images
    # follow a link to another page, as a reader would
    href = _evaluate(browser, session, "document.querySelector('article a[href*=\"benchmarks/modes.html\"]').href")
    before = len(events)
    browser.send("Page.navigate", session, url=href)
    browser.wait_for("Page.loadEventFired", session, before)
    title = _evaluate(browser, session, "document.querySelector('article h1').innerText")
    assert title.startswith("Forward vs reverse mode")
    assert not _errors(events, session, start), _errors(events, session, start)


def _go(browser: Browser, session: str, events: list[dict], href: str) -> None:
    before = len(events)
    browser.send("Page.navigate", session, url=href)
    browser.wait_for("Page.loadEventFired", session, before)
    _evaluate(browser, session, _SETTLE)


def test_links_both_ways_formula_check_api_in_the_browser(site, browser):
    """A reader goes from a formula to its check, from the check back to the formula, and from an
    API entry (whose docstring math is typeset) to the check that proves it."""
    session, events, start = _open(browser, site / "formulas" / "backprop.html")
    _evaluate(browser, session, _SETTLE)
    href = _evaluate(
        browser, session, "document.querySelector('#f11 ~ ul a[href$=\"checks.html#f11-hidden-deltas\"]').href"
    )
    _go(browser, session, events, href)
    entry = _evaluate(
        browser,
        session,
        """(() => { const h = document.getElementById('f11-hidden-deltas'); const out = [];
        for (let e = h.nextElementSibling; e && !/^H[23]$/.test(e.tagName); e = e.nextElementSibling) out.push(e);
        return {formula: out.map(e => Array.from(e.querySelectorAll('a'))).flat()
                   .map(a => a.href).find(h => h.endsWith('formulas/backprop.html#f11')),
                source: out.some(e => e.tagName === 'DETAILS' && e.innerText.startsWith('Source: verify/formulas/'))};
        })()""",
    )
    assert entry["formula"] and entry["source"], entry
    _go(browser, session, events, entry["formula"])
    assert _evaluate(browser, session, "location.hash === '#f11' && !!document.getElementById('f11')")

    _go(browser, session, events, (site / "api" / "backprop.html").as_uri())
    math = _evaluate(browser, session, "document.querySelectorAll('article .arithmatex').length")
    typeset = _evaluate(browser, session, "document.querySelectorAll('article .arithmatex .katex').length")
    assert math >= 5 and typeset == math, f"{typeset} of {math} docstring formulas typeset"
    text = _evaluate(browser, session, "document.querySelector('article').innerText")
    assert "\\delta" not in text and "delta^(" not in text and "dL_i/dz_i" not in text
    source = _evaluate(
        browser, session, "!!document.querySelector('#fnnjax\\\\.backprop ~ div details.mkdocstrings-source')"
    )
    assert source, "fnnjax.backprop shows no source"
    href = _evaluate(
        browser,
        session,
        "document.querySelector('.fnnjax-proof a[href$=\"checks.html#f12-outer-product\"]').href",
    )
    _go(browser, session, events, href)
    assert _evaluate(browser, session, "!!document.getElementById('f12-outer-product')")
    assert not _errors(events, session, start), _errors(events, session, start)


def test_table_code_names_do_not_break_in_the_browser(site, browser):
    session, events, start = _open(browser, site / "benchmarks" / "speed.html")
    _evaluate(browser, session, _SETTLE)
    broken = _evaluate(
        browser,
        session,
        """Array.from(document.querySelectorAll('article td code'))
          .filter(c => getComputedStyle(c).whiteSpace !== 'nowrap' || c.getClientRects().length > 1)
          .map(c => c.textContent)""",
    )
    assert broken == [], broken[:10]
    assert not _errors(events, session, start), _errors(events, session, start)


def test_wide_plots_are_shown_wider_than_the_column_on_a_wide_screen(site, browser):
    """A plot of 2 panels across spreads over the sidebars on a 1920 px screen, so that its labels stay legible."""
    session, events, start = _open(browser, site / "benchmarks" / "modes.html")
    browser.send(
        "Emulation.setDeviceMetricsOverride", session, width=1920, height=1080, deviceScaleFactor=1, mobile=False
    )
    _evaluate(browser, session, _SETTLE)
    sizes = _evaluate(
        browser,
        session,
        """Array.from(document.querySelectorAll('article a.fnnjax-plot--wide img')).map(img => [
          img.getBoundingClientRect().width, img.naturalWidth,
          document.querySelector('article').getBoundingClientRect().width])""",
    )
    assert len(sizes) == 3, sizes  # the two grids of 3 rows and the Hessian plot, each 2 panels (1100 px) wide
    for shown, natural, column in sizes:
        assert shown >= 1.3 * column and shown >= 0.7 * natural, (shown, natural, column)
    assert not _errors(events, session, start), _errors(events, session, start)
