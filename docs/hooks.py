"""MkDocs hooks of the fnnjax site (``hooks:`` in mkdocs.yml).

- The benchmark plots stay where the benchmarks write them (``benchmarks/results/``): :func:`on_files`
  adds every PNG found there to the site under the same path, so a page links
  ``../benchmarks/results/modes_cpu.png`` and the committed file is the only copy.
- The docstrings' ``Example:`` sections hold doctests: :class:`ExampleSections` (a griffe
  extension, ``extensions:`` in mkdocs.yml) reads them as Google-style ``Examples:`` so that they
  render as code, not as Markdown.
- Docstrings cite formulas by number ("F11") and name objects with Sphinx roles
  (:func:`fnnjax.loss`); :func:`on_env` turns both into links on the API pages, once every page is
  rendered: an F-number leads to its formula's heading, a role to the object's API entry when the
  site renders it (otherwise it stays plain code, without the role prefix).
- Every check of ``fnnjax verify`` has an entry on ``checks.md`` (:func:`on_page_markdown` writes them
  from the registry and the recorded full run ``snippets/verify-report.json``): claim, evidence,
  criterion, what was measured, the formula it proves and its source. On every page a check ID in
  code (```F11-hidden-deltas```) links to that entry, and each API entry that a formula page names
  under "In fnnjax" starts with the formulas it implements and the checks that prove it.
- Plots open full size when clicked; the search index holds math as plain text, not LaTeX
  (:func:`on_post_build`).
"""

from __future__ import annotations

import html
import inspect
import json
import re
import textwrap
from functools import cache
from pathlib import Path

import griffe
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url

from fnnjax.verify.formulas import FORMULA_PAGES, all_checks, check_page, formula_page

ROOT = Path(__file__).resolve().parent.parent
RESULTS = "benchmarks/results"
API_PREFIX = "api/"
CHECKS_PAGE = check_page("F1-x").removeprefix("docs/").split("#")[0]  # checks.md
VERIFY_REPORT = ROOT / "docs" / "snippets" / "verify-report.json"
_CHECKS_MARKER = re.compile(r"<!-- fnnjax:checks -->.*?<!-- /fnnjax:checks -->", re.S)

_ROLE = re.compile(r":(?:func|class|data|mod|meth|attr|exc|obj):<code>(~?)([A-Za-z_][\w.]*)</code>")
_TAG = re.compile(r"(<[^>]+>)")
_TAG_NAME = re.compile(r"<\s*(/?)\s*([a-zA-Z0-9]+)")
_SKIP_TAGS = {"a", "code", "pre", "script", "style", "h1", "h2", "h3", "h4", "h5", "h6"}
_F_NUMBER = re.compile(r"(?<![\w.])F(\d{1,2})\b")
_ANCHOR = re.compile(r'\bid="((?:fnnjax|verify|benchmarks)(?:\.\w+)*)"')


_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", re.M)


class ExampleSections(griffe.Extension):
    """Read a docstring's ``Example:`` heading as ``Examples:`` (its doctests then render as code)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE_HEADING.sub(r"\1Examples:", obj.docstring.value)


def on_files(files: Files, config) -> Files:
    """Add the committed benchmark plots to the site, at the same path as in the repository."""
    for png in sorted((ROOT / RESULTS).rglob("*.png")):
        rel = png.relative_to(ROOT).as_posix()
        if files.get_file_from_path(rel) is None:
            files.append(
                File(
                    rel, src_dir=str(ROOT), dest_dir=config["site_dir"], use_directory_urls=config["use_directory_urls"]
                )
            )
    return files


def formula_url(number: int) -> str | None:
    """The site URL of formula F<number>'s heading, e.g. ``formulas/backprop.html#f10``."""
    page = formula_page(number)
    if page is None:
        return None
    path, anchor = page.removeprefix("docs/").split("#")
    return f"{path.removesuffix('.md')}.html#{anchor}"


def _resolve(name: str, package: str, anchors: dict[str, str]) -> str | None:
    for candidate in (name, f"{package}.{name}", f"fnnjax.{name}", f"verify.{name}", f"fnnjax.data.{name}"):
        if candidate in anchors:
            return candidate
    return None


def _link_roles(content: str, page_url: str, package: str, anchors: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        short, name = match.group(1) == "~", match.group(2)
        shown = name.rsplit(".", 1)[-1] if short else name
        target = _resolve(name, package, anchors)
        code = f"<code>{html.escape(shown)}</code>"
        if target is None:
            return code
        href = get_relative_url(anchors[target], page_url) + "#" + target
        return f'<a href="{html.escape(href)}" title="{html.escape(target)}">{code}</a>'

    return _ROLE.sub(replace, content)


def _link_formulas(content: str, page_url: str) -> str:
    def replace(match: re.Match) -> str:
        url = formula_url(int(match.group(1)))
        if url is None:
            return match.group(0)
        return f'<a href="{get_relative_url(url, page_url)}" title="formula F{match.group(1)}">{match.group(0)}</a>'

    out, skip = [], 0
    for token in _TAG.split(content):
        if token.startswith("<"):
            tag = _TAG_NAME.match(token)
            if tag and tag.group(2).lower() in _SKIP_TAGS and not token.endswith("/>"):
                skip += -1 if tag.group(1) else 1
            out.append(token)
        else:
            out.append(_F_NUMBER.sub(replace, token) if skip == 0 else token)
    return "".join(out)


def on_env(env, config, files: Files):
    """Link F-numbers and Sphinx roles on the API pages (every page's content exists by now)."""
    api_pages = [
        f.page
        for f in files.documentation_pages()
        if f.src_uri.startswith(API_PREFIX) and f.page is not None and f.page.content
    ]
    anchors: dict[str, str] = {}
    for page in api_pages:
        for ident in _ANCHOR.findall(page.content or ""):
            anchors.setdefault(ident, page.url)
    for page in api_pages:
        content = page.content or ""
        roots = _ANCHOR.findall(content)
        package = roots[0].split(".")[0] if roots else "fnnjax"
        page.content = _link_formulas(_link_roles(content, page.url, package, anchors), page.url)
    link_checks_and_plots(files)
    return env


# ------------------------------------------------------------------------------------------------
# The checks page, and links to its entries


@cache
def formula_titles() -> dict[int, str]:
    """Formula number -> the title of its heading on its page (``## F11 Hidden error terms {#f11}``)."""
    titles = {}
    for page in FORMULA_PAGES:
        for n, title in re.findall(r"^## F(\d+) (.*?)\s*\{#f\d+\}", (ROOT / page).read_text(), re.M):
            titles[int(n)] = title
    return titles


@cache
def formula_objects() -> dict[str, tuple[int, ...]]:
    """API object -> the formulas whose section names it (``[`fnnjax.deltas`][fnnjax.deltas]`` under
    F10 and F11: ``fnnjax.deltas`` -> (10, 11, ...)): the formula pages say which function implements
    each formula, and the API entries say it back."""
    found: dict[str, set[int]] = {}
    for page in FORMULA_PAGES:
        text = (ROOT / page).read_text()
        for match in re.finditer(r"^## F(\d+) .*?\{#f\d+\}\n(.*?)(?=^## |\Z)", text, re.M | re.S):
            for name in re.findall(r"\]\[((?:fnnjax|verify)\.[\w.]+)\]", match.group(2)):
                found.setdefault(name, set()).add(int(match.group(1)))
    return {name: tuple(sorted(numbers)) for name, numbers in sorted(found.items())}


@cache
def check_ids() -> dict[str, int]:
    """Check ID -> formula number, for every check of the registry."""
    return {c.id: c.number for c in all_checks()}


def _md_text(text: str) -> str:
    """Plain text as Markdown (a claim may read "[W b] [x; 1]" or "||x||")."""
    escaped = re.sub(r"([\\`*_\[\]|])", r"\\\1", str(text))
    return escaped.replace("<", "&lt;").replace("$", "&#36;")  # no HTML tag, no math


def _value(value) -> str:
    from fnnjax.verify.formulas import format_value

    return format_value(value)


def checks_markdown() -> str:
    """One entry per check, grouped by formula: the markdown written into the checks page."""
    report = json.loads(VERIFY_REPORT.read_text()) if VERIFY_REPORT.exists() else {"checks": []}
    recorded = {c["id"]: c for c in report["checks"]}
    titles = formula_titles()
    out: list[str] = []
    number = None
    for c in all_checks():
        page, anchor = (formula_page(c.number) or "#").removeprefix("docs/").split("#")
        if c.number != number:
            number = c.number
            title = titles.get(number, "")
            out += [
                f"## F{number} {title} {{#checks-f{number}}}",
                "",
                f"Derived in [F{number} {title}]({page}#{anchor}).",
                "",
            ]
        run = recorded.get(c.id)
        source_file = Path(inspect.getsourcefile(c.fn) or "").resolve()
        lines, first = inspect.getsourcelines(c.fn)
        try:
            shown = source_file.relative_to(ROOT).as_posix()
        except ValueError:
            shown = source_file.name
        shown = shown.replace("fnnjax/verify/", "verify/")
        out += [
            f"### {c.id} {{#{c.id.lower()}}}",
            "",
            f"**Claim.** {_md_text(c.claim)}",
            "",
            f"**Proves** [F{c.number} {titles.get(c.number, '')}]({page}#{anchor}).",
            "",
            f"**Evidence.** {_md_text(c.method)}",
            "",
        ]
        if run is not None:
            measured = "; ".join(f"{k} {_value(v)}" for k, v in run["measured"].items())
            out += [
                f"**Criterion.** {_md_text(run['tolerance'])}",
                "",
                f"**Measured** (the recorded full run: seed {report.get('seed')}, {report.get('device')}): "
                f"{_md_text(measured)} — **{run['status']}**",
                "",
            ]
        out += [
            f"**Run it:** `fnnjax verify --only {c.id}`",
            "",
            f'??? abstract "Source: {shown}, line {first} (`{c.fn.__name__}`)"',
            "",
            textwrap.indent("```python\n" + "".join(lines).rstrip() + "\n```", "    "),
            "",
        ]
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files):
    """Write every check's entry into the checks page."""
    if page.file.src_uri == CHECKS_PAGE:
        return _CHECKS_MARKER.sub(lambda _: checks_markdown(), markdown, count=1)
    return markdown


_CHECK_CODE = re.compile(r"<code>(F\d{1,2}-[a-z0-9]+(?:-[a-z0-9]+)*)</code>")


def _outside(content: str, skip_tags: set[str], replace) -> str:
    """Apply ``replace`` to the HTML text of ``content`` outside ``skip_tags`` (tags included)."""
    out, skip = [], 0
    for token in re.split(r"(<code>[^<]*</code>|<[^>]+>)", content):
        if token.startswith("<code>"):
            out.append(replace(token) if skip == 0 else token)
            continue
        if token.startswith("<"):
            tag = _TAG_NAME.match(token)
            if tag and tag.group(2).lower() in skip_tags and not token.endswith("/>"):
                skip = max(0, skip + (-1 if tag.group(1) else 1))
        out.append(token)
    return "".join(out)


def _link_check_ids(content: str, page_url: str) -> str:
    """``<code>F11-hidden-deltas</code>`` (outside links and headings) -> a link to its entry."""
    known = check_ids()
    checks_url = CHECKS_PAGE.removesuffix(".md") + ".html"

    def replace(code: str) -> str:
        def link(match: re.Match) -> str:
            ident = match.group(1)
            if ident not in known:
                return match.group(0)
            href = get_relative_url(checks_url, page_url) + "#" + ident.lower()
            return f'<a href="{html.escape(href)}" title="the check {ident}">{match.group(0)}</a>'

        return _CHECK_CODE.sub(link, code)

    return _outside(content, {"a", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}, replace)


def _proof_line(name: str, page_url: str) -> str:
    numbers = formula_objects().get(name, ())
    if not numbers:
        return ""
    titles = formula_titles()
    checks_url = CHECKS_PAGE.removesuffix(".md") + ".html"
    formulas = ", ".join(
        f'<a href="{get_relative_url(formula_url(n) or "", page_url)}" '
        f'title="F{n} {html.escape(titles.get(n, ""))}">F{n}</a>'
        for n in numbers
    )
    checks = ", ".join(
        f'<a href="{get_relative_url(checks_url, page_url)}#{ident.lower()}" '
        f'title="the check {ident}"><code>{ident}</code></a>'
        for ident, n in check_ids().items()
        if n in numbers
    )
    return (
        f'<p class="fnnjax-proof"><strong>Formulas</strong> {formulas} &middot; <strong>Proven by</strong> {checks}</p>'
    )


_HEADING_ID = re.compile(r'<h[1-6] id="((?:fnnjax|verify)(?:\.\w+)+)"')
_CONTENTS = re.compile(r'<div class="doc doc-contents[^"]*">')


def _add_proofs(content: str, page_url: str) -> str:
    """After each API entry's heading, at the start of its contents: the formulas and the checks."""
    out, pos = [], 0
    for match in _HEADING_ID.finditer(content):
        line = _proof_line(match.group(1), page_url)
        if not line:
            continue
        contents = _CONTENTS.search(content, match.end())
        if contents is None or contents.start() < pos:
            continue
        out += [content[pos : contents.end()], line]
        pos = contents.end()
    out.append(content[pos:])
    return "".join(out)


_IMG = re.compile(r'<img\b[^>]*\bsrc="([^"]+\.png)"[^>]*>')


WIDE_PLOT_PX = 1000
"""A plot at least this wide (2 panels across, :data:`fnnjax.benchmarks._plot.MAX_COLUMNS`) is
shown wider than the text on wide screens, so that each panel stays about 450 px wide or more."""


def png_width(path: Path) -> int:
    """The width in pixels of a PNG file (from its IHDR chunk); 0 for anything else."""
    try:
        head = path.read_bytes()[:24]
    except OSError:
        return 0
    return int.from_bytes(head[16:20], "big") if head[:8] == b"\x89PNG\r\n\x1a\n" else 0


def _enlargeable_plots(content: str, page_src: str = "") -> str:
    """Each plot (a PNG image outside a link) inside a link to its file: a click shows it full size.
    A wide one (:data:`WIDE_PLOT_PX`) gets the class ``fnnjax-plot--wide``: the stylesheet lets it
    spread over the sidebars on a wide screen, so that its panels' labels stay legible."""

    def wrap(match: re.Match) -> str:
        src = match.group(1)
        path = (ROOT / "docs" / Path(page_src).parent / src).resolve()
        if not path.exists():  # the plots are added from the repository's benchmarks/results/
            tail = path.as_posix().split("/benchmarks/results/", 1)
            path = ROOT / "benchmarks" / "results" / tail[1] if len(tail) == 2 else path
        wide = " fnnjax-plot--wide" if png_width(path) >= WIDE_PLOT_PX else ""
        return f'<a class="fnnjax-plot{wide}" href="{src}" title="open the full-size plot">{match.group(0)}</a>'

    out, in_link = [], 0
    for token in _TAG.split(content):
        tag = _TAG_NAME.match(token) if token.startswith("<") else None
        if tag and tag.group(2).lower() == "a":
            in_link = max(0, in_link + (-1 if tag.group(1) else 1))
        out.append(_IMG.sub(wrap, token) if tag and tag.group(2).lower() == "img" and not in_link else token)
    return "".join(out)


def link_checks_and_plots(files: Files) -> None:
    """On every page: check IDs link to their entries, plots open full size; on the API pages, each
    entry named by a formula page starts with its formulas and checks."""
    for f in files.documentation_pages():
        page = f.page
        if page is None or not page.content:
            continue
        content = page.content
        if f.src_uri.startswith(API_PREFIX):
            content = _add_proofs(content, page.url)
        if f.src_uri != CHECKS_PAGE:
            content = _link_check_ids(content, page.url)
        page.content = _enlargeable_plots(content, f.src_uri)


# ------------------------------------------------------------------------------------------------
# The search index without LaTeX

_MATH = re.compile(r"\\\((.*?)\\\)|\\\[(.*?)\\\]|\$\$(.*?)\$\$", re.S)
_TEX_SYMBOLS = dict(
    pair.split()
    for pair in re.findall(
        r"\S+ \S+",
        "alpha α beta β gamma γ delta δ Delta Δ epsilon ε varepsilon ε eta η theta θ lambda λ mu μ sigma σ "
        "Sigma Σ tau τ phi φ varphi φ psi ψ omega ω pi π rho ρ xi ξ nabla ∇ partial ∂ sum ∑ prod ∏ int ∫ "
        "infty ∞ cdot · cdots ⋯ dots … ldots … times × odot ⊙ otimes ⊗ le ≤ leq ≤ ge ≥ geq ≥ ne ≠ neq ≠ "
        "approx ≈ sim ~ to → rightarrow → mapsto ↦ in ∈ top ᵀ pm ± mid | lVert ‖ rVert ‖ Vert ‖ lvert | "
        "rvert | langle ⟨ rangle ⟩ circ ∘ log log exp exp max max min min tanh tanh sqrt √ ",
    )
)
"""TeX command -> the character a search preview shows for it."""


def _script(mark: str, body: str) -> str:
    body = body.strip()
    simple = len(body) <= 1 or re.fullmatch(r"\(.*\)|\w+", body) is not None and len(body) <= 2
    return mark + (body if simple or body.startswith("(") and body.endswith(")") else f"({body})")


def plain_math(tex: str) -> str:
    """TeX as plain text for a search preview: ``\\delta^{(l)} = \\frac{a}{b}`` -> ``δ^(l) = (a)/(b)``."""
    text = re.sub(r"\\[dt]?frac\s*(\d)\s*(\d)", r"\1/\2", tex)
    text = re.sub(r"\\(?:hat|widehat)\s*(?:\{(\w)\}|(\w))", lambda m: (m.group(1) or m.group(2)) + "\u0302", text)
    text = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)[lr]?\b\s*", "", text)
    text = re.sub(r"\\q?quad\b", " ", text)
    for _ in range(30):  # innermost groups first
        before = text
        text = re.sub(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"(\1)/(\2)", text)
        text = re.sub(r"\\sqrt\s*\{([^{}]*)\}", r"√(\1)", text)
        text = re.sub(r"([_^])\{([^{}]*)\}", lambda m: _script(m.group(1), m.group(2)), text)
        text = re.sub(
            r"\\(?:mathcal|mathbb|mathbf|mathrm|mathit|operatorname|text|textrm|boldsymbol|tilde|bar|overline)"
            r"\s*\{([^{}]*)\}",
            r"\1",
            text,
        )
        if text == before:  # only then the bare groups: a group after a command is that command's
            text = re.sub(r"(?<![\\}])\{([^{}]*)\}", r"\1", text)
            if text == before:
                break
    text = re.sub(r"\\(?:textstyle|displaystyle|scriptstyle|limits|nolimits)\b", "", text)
    text = re.sub(r"\\([A-Za-z]+)", lambda m: _TEX_SYMBOLS.get(m.group(1), m.group(1)), text)
    text = re.sub(r"\\[,;:! ]", " ", text).replace("\\{", "{").replace("\\}", "}").replace("\\\\", " ")
    text = text.replace("&", " ")
    return re.sub(r"\s+", " ", text).strip()


_SOURCE_LISTING = re.compile(r"\s*Source code in <code>[^<]*</code>\s*<pre><code>.*?</code></pre>", re.S)


def plain_search_text(text: str) -> str:
    """A search entry without the API entries' source listings (their docstrings hold TeX) and with
    every math span (``\\(...\\)``, ``\\[...\\]``, ``$$...$$``) as plain text."""
    text = _SOURCE_LISTING.sub("", text)
    return _MATH.sub(lambda m: plain_math(next(g for g in m.groups() if g is not None)), text)


@event_priority(-200)  # after the search plugin wrote the index and the offline plugin inlined it
def on_post_build(config) -> None:
    """Rewrite the search index (and the offline plugin's copy of it) with math as plain text."""
    folder = Path(config["site_dir"]) / "search"
    index_file = folder / "search_index.json"
    if not index_file.exists():
        return
    index = json.loads(index_file.read_text(encoding="utf-8"))
    for doc in index.get("docs", []):
        for key in ("title", "text"):
            if isinstance(doc.get(key), str):
                doc[key] = plain_search_text(doc[key])
    data = json.dumps(index, ensure_ascii=False, separators=(",", ":"))
    index_file.write_text(data, encoding="utf-8")
    if (folder / "search_index.js").exists():
        (folder / "search_index.js").write_text(f"var __index = {data}", encoding="utf-8")
