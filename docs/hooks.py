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
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import griffe
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url

from fnnjax.verify.formulas._registry import formula_page

ROOT = Path(__file__).resolve().parent.parent
RESULTS = "benchmarks/results"
API_PREFIX = "api/"

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
    return env
