"""The outputs of grading a class: ``grades.csv``, ``report.md``, ``report.html`` and ``mistakes.png``.

- ``grades.csv``: one row per submission and part (``submission, part, score, max_score, status,
  codes, diagnosis``), written with the ``csv`` module; a cell that a spreadsheet would read as a
  formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is prefixed with
  ``'``, and control characters are removed, so that no text from a submission runs as a formula.
- ``report.md`` and ``report.html``: the score distribution, then the mistakes by kind and by layer
  across the class (``missing-l2 in layer 2: 14 of 120 submissions``), each with one example; the
  HTML escapes every text that comes from a submission.
- ``mistakes.png``: the mistakes by kind as a bar chart (matplotlib, Agg).
"""

from __future__ import annotations

import csv
import html
import io
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ._class import ClassResult, Graded
from ._diagnosis import CODES

__all__ = ["Mistake", "mistakes", "render_html", "render_markdown", "safe_cell", "write_csv", "write_report"]

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07?|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def safe_cell(value: Any) -> Any:
    """A CSV cell no spreadsheet runs as a formula: text starting with ``= + - @``, a tab or a carriage
    return gets a leading ``'``; terminal escapes and control characters are removed. Numbers are
    left as they are.

    Example:
      >>> from fnnjax.verify.grader._class_report import safe_cell
      >>> safe_cell('=HYPERLINK("http://x")'), safe_cell("-1+2"), safe_cell(-1.5), safe_cell("ok")
      ('\\'=HYPERLINK("http://x")', "'-1+2", -1.5, 'ok')
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = _CONTROL.sub("", "" if value is None else str(value))
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(_CONTROL.sub("", text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _codes_text(codes: Sequence[Sequence[Any]]) -> str:
    return "; ".join(_label(c) for c in codes)


def _label(code: Sequence[Any]) -> str:
    kind, layer, where = code
    text = f"{kind} (layer {layer})" if layer is not None else str(kind)
    return f"{where}: {text}" if where else text


def write_csv(result: ClassResult, path: Path) -> None:
    """``grades.csv``: one row per submission and part."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission", "part", "score", "max_score", "status", "codes", "diagnosis"])
    for g in result.graded:
        for part in g.parts:
            row = [
                g.student,
                part["part"],
                part["score"],
                part["max_score"],
                part["status"],
                _codes_text(part["codes"]),
                _one_line(part["diagnosis"]),
            ]
            writer.writerow([safe_cell(v) for v in row])
    path.write_text(buffer.getvalue(), encoding="utf-8")


class Mistake(NamedTuple):
    """One kind of mistake across the class.

    Attributes:
      code: the stable code (``missing-l2``).
      layer: the layer, or None (counted over every layer).
      where: the course function it is in (per-function credit), or ``""``.
      submissions: how many submissions make it.
      example: ``(student, part, diagnosis lines)`` of one of them.
    """

    code: str
    layer: int | None
    where: str
    submissions: int
    example: tuple[str, str, tuple[str, ...]]

    @property
    def label(self) -> str:
        """``missing-l2 (layer 2)``, ``affine_backward: unfinished``."""
        return _label((self.code, self.layer, self.where))


def mistakes(graded: Sequence[Graded], *, by_layer: bool) -> list[Mistake]:
    """The mistakes across the class, most frequent first: by kind (every layer together) or by kind and layer.

    Each submission counts once per mistake, whatever the number of parts or cases that show it.
    """
    seen: dict[tuple, list[tuple[str, str, tuple[str, ...]]]] = {}
    for g in graded:
        mine: dict[tuple, tuple[str, str, tuple[str, ...]]] = {}
        for part in g.parts:
            for kind, layer, where in part["codes"]:
                key = (kind, layer if by_layer else None, where)
                mine.setdefault(key, (g.student, part["part"], tuple(part.get("example") or [part["diagnosis"]])))
        for key, example in mine.items():
            seen.setdefault(key, []).append(example)
    out = [Mistake(k[0], k[1], k[2], len(v), v[0]) for k, v in seen.items()]
    return sorted(out, key=lambda m: (-m.submissions, m.code, m.layer or 0, m.where))


def _distribution(graded: Sequence[Graded]) -> list[tuple[str, int]]:
    bins = [0] * 10
    for g in graded:
        share = g.score / g.max_score if g.max_score else 0.0
        bins[min(int(share * 10 + 1e-9), 9)] += 1
    return [(f"{10 * k}–{10 * k + 10}%" if k < 9 else "90–100%", n) for k, n in enumerate(bins)]


def _summary(result: ClassResult) -> dict[str, Any]:
    graded = result.graded
    shares = [100 * g.score / g.max_score if g.max_score else 0.0 for g in graded]
    return {
        "n": len(graded),
        "passed": sum(g.passed for g in graded),
        "median": statistics.median(shares) if shares else 0.0,
        "mean": statistics.fmean(shares) if shares else 0.0,
        "errors": sum(any(p["status"] in ("error", "timeout", "crash", "exit") for p in g.parts) for g in graded),
    }


def _options_line(result: ClassResult) -> str:
    """The options that decided the grades, as on the command line (``seed 0, timeout 10 s``)."""
    o = result.options
    words = [f"seed {o.get('seed', 0)}", f"timeout {o.get('timeout', 10):g} s per case"]
    for key, flag in (
        ("convention", "convention"),
        ("points", "points"),
        ("l2_factor", "l2-factor"),
        ("memory", "memory"),
    ):
        if o.get(key) is not None:
            words.append(f"--{flag} {o[key]}")
    if o.get("strict"):
        words.append("--strict")
    if o.get("init"):
        words.append("--init " + " ".join(f"{k}={v!r}" for k, v in dict(o["init"]).items()))
    if o.get("namespaces") is False:
        words.append("--no-namespaces")
    if o.get("allow_autodiff"):
        words.append("--allow-autodiff")
    return ", ".join(words)


def render_markdown(result: ClassResult, *, image: str | None = "mistakes.png") -> str:
    """``report.md``: the score distribution, then the mistakes by kind and by layer, each with an example."""
    s = _summary(result)
    n = s["n"]
    lines = [
        f"# Grades of {Path(result.folder).name}",
        "",
        f"{n} submissions graded ({_options_line(result)}); {s['passed']} pass every case; "
        f"median score {s['median']:.0f}%, mean {s['mean']:.0f}%; {s['errors']} could not be graded "
        "or crashed, hung or exited.",
        "",
        "## Score distribution",
        "",
        "| score | submissions | |",
        "|---|---:|---|",
    ]
    for label, count in _distribution(result.graded):
        lines.append(f"| {label} | {count} | {'█' * count} |")
    for title, by_layer in (("Mistakes by kind", False), ("Mistakes by kind and layer", True)):
        found = mistakes(result.graded, by_layer=by_layer)
        if by_layer:
            found = [m for m in found if m.layer is not None]
        lines += ["", f"## {title}", ""]
        if not found:
            lines.append("None." if not by_layer else "No mistake tied to a layer.")
            continue
        lines += ["| mistake | submissions | meaning | example |", "|---|---:|---|---|"]
        for m in found:
            student, part, example = m.example
            text = _md(_one_line(example[0] if example else "", 160))
            meaning = html.escape(CODES.get(m.code, ""), quote=False)
            lines.append(f"| `{m.label}` | {m.submissions} of {n} | {meaning} | {_md(student)} ({_md(part)}): {text} |")
    if image and mistakes(result.graded, by_layer=False):
        lines += ["", f"![mistakes by kind]({image})"]
    lines += ["", "## Submissions", "", "| submission | score | status | mistakes |", "|---|---:|---|---|"]
    for g in result.graded:
        status = "pass" if g.passed else ", ".join(sorted({p["status"] for p in g.parts} - {"pass"}))
        codes = "; ".join(dict.fromkeys(_label(c) for p in g.parts for c in p["codes"]))
        lines.append(f"| {_md(g.student)} | {g.score:g} / {g.max_score:g} | {status} | {_md(codes)} |")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Text from a submission, inert in a markdown table (no markup, no HTML, no links)."""
    text = _one_line(text, 400)
    text = html.escape(text, quote=False)
    return re.sub(r"([\\`*_\[\]|~])", r"\\\1", text)


def render_html(result: ClassResult, *, image: str | None = "mistakes.png") -> str:
    """``report.html``: the same as the markdown, every text from a submission escaped."""
    e = html.escape
    s = _summary(result)
    n = s["n"]
    body = [
        f"<h1>Grades of {e(Path(result.folder).name)}</h1>",
        f"<p>{n} submissions graded ({e(_options_line(result))}); {s['passed']} pass every case; "
        f"median score {s['median']:.0f}%, mean {s['mean']:.0f}%; {s['errors']} could not be graded "
        "or crashed, hung or exited.</p>",
        "<h2>Score distribution</h2>",
        "<table><tr><th>score</th><th>submissions</th><th></th></tr>",
    ]
    for label, count in _distribution(result.graded):
        bar = f'<span class="bar" style="width:{8 * count}px"></span>'
        body.append(f"<tr><td>{e(label)}</td><td>{count}</td><td>{bar}</td></tr>")
    body.append("</table>")
    for title, by_layer in (("Mistakes by kind", False), ("Mistakes by kind and layer", True)):
        found = mistakes(result.graded, by_layer=by_layer)
        if by_layer:
            found = [m for m in found if m.layer is not None]
        body.append(f"<h2>{title}</h2>")
        if not found:
            body.append("<p>None.</p>")
            continue
        body.append("<table><tr><th>mistake</th><th>submissions</th><th>meaning</th><th>example</th></tr>")
        for m in found:
            student, part, example = m.example
            lines = "<br>".join(e(_one_line(x, 300)) for x in example[:4])
            body.append(
                f"<tr><td><code>{e(m.label)}</code></td><td>{m.submissions} of {n}</td>"
                f"<td>{e(CODES.get(m.code, ''))}</td><td><b>{e(student)}</b> ({e(part)}):<br>{lines}</td></tr>"
            )
        body.append("</table>")
    if image and mistakes(result.graded, by_layer=False):
        body.append(f'<p><img src="{e(image)}" alt="mistakes by kind"></p>')
    body.append("<h2>Submissions</h2>")
    body.append("<table><tr><th>submission</th><th>part</th><th>score</th><th>status</th><th>diagnosis</th></tr>")
    for g in result.graded:
        for p in g.parts:
            body.append(
                f"<tr><td>{e(g.student)}</td><td>{e(p['part'])}</td><td>{p['score']:g} / {p['max_score']:g}</td>"
                f"<td>{e(p['status'])}</td><td>{e(_one_line(p['diagnosis'], 300))}</td></tr>"
            )
    body.append("</table>")
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}"
        ".bar{display:inline-block;height:.8em;background:#4a7ebb}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Grades of {e(Path(result.folder).name)}</title><style>{style}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def plot_mistakes(result: ClassResult, path: Path) -> None:
    """``mistakes.png``: how many submissions make each kind of mistake (a horizontal bar chart)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    found = mistakes(result.graded, by_layer=False)[:20]
    n = len(result.graded)
    fig = Figure(figsize=(7, 1.2 + 0.35 * max(len(found), 1)), dpi=100)
    ax = fig.add_subplot()
    if found:
        labels = [m.label if len(m.label) <= 48 else m.label[:47] + "…" for m in found][::-1]
        counts = [m.submissions for m in found][::-1]
        ax.barh(range(len(found)), counts, color="#4a7ebb")
        ax.set_yticks(range(len(found)), labels, fontsize=8)
        ax.set_xlim(0, max(n, 1))
        for k, c in enumerate(counts):
            ax.text(c, k, f" {c}", va="center", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no mistakes", ha="center", va="center")
        ax.set_yticks([])
    ax.set_xlabel(f"submissions (of {n})")
    ax.set_title("Mistakes by kind across the class", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def write_report(result: ClassResult, out: Path) -> list[Path]:
    """Write grades.csv, report.md, report.html and mistakes.png into ``out``; return their paths."""
    out = Path(out)
    paths = [out / "grades.csv", out / "report.md", out / "report.html", out / "mistakes.png"]
    write_csv(result, paths[0])
    paths[1].write_text(render_markdown(result), encoding="utf-8")
    paths[2].write_text(render_html(result), encoding="utf-8")
    plot_mistakes(result, paths[3])
    return paths
