"""A timeline's renderings: text for the terminal, JSON, Markdown and HTML, each opening with
the auditor's summary (`audit.summary`) when given one."""

from __future__ import annotations

import html
import json
from dataclasses import asdict

from makegood.audit.timeline import Line


def as_text(lines: list[Line], summary: list[str] | None = None) -> str:
    out = [*(summary or []), ""] if summary else []
    for line in lines:
        extra = "".join(f"  [{v}]" for v in (line.amount, line.key, line.by) if v)
        out.append(f"{line.at:%Y-%m-%d %H:%M:%S}  {line.kind:<12} {line.text}{extra}")
        out += [f"{'':33}| {said}" for said in (line.said or "").splitlines()]
    return "\n".join(out)


def as_json(lines: list[Line]) -> str:
    return json.dumps([asdict(line) for line in lines], indent=2, default=str)


def as_markdown(lines: list[Line], title: str, summary: list[str] | None = None) -> str:
    def cell(v: str | None) -> str:
        return (v or "").replace("|", "\\|")

    rows = [
        f"# Timeline of {title}",
        "",
        *([*(f"- {fact}" for fact in summary), ""] if summary else []),
        "| when (UTC) | what | detail | amount | key | by |",
        "|---|---|---|---|---|---|",
    ]
    rows += [
        f"| {line.at:%Y-%m-%d %H:%M:%S} | {line.kind} | {cell(line.text)}"
        + (f"<br>{'<br>'.join(cell(x) for x in line.said.splitlines())}" if line.said else "")
        + " | "
        f"{cell(line.amount)} | {cell(line.key)} | {cell(line.by)} |"
        for line in lines
    ]
    return "\n".join(rows) + "\n"


def as_html(lines: list[Line], title: str, summary: list[str] | None = None) -> str:
    def td(v: str | None) -> str:
        return f"<td>{html.escape(v or '')}</td>"

    body = "\n".join(
        f'<tr class="{html.escape(line.kind)}">{td(f"{line.at:%Y-%m-%d %H:%M:%S}")}'
        f"{td(line.kind)}<td>{html.escape(line.text)}"
        + (f'<pre class="said">{html.escape(line.said)}</pre>' if line.said else "")
        + f"</td>{td(line.amount)}{td(line.key)}{td(line.by)}</tr>"
        for line in lines
    )
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>Timeline of '
        f"{html.escape(title)}</title><style>body{{font-family:sans-serif}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        ".payment{background:#eef8ee}.sla_breach,.escalation,.failure{background:#fbeaea}"
        f"</style></head><body><h1>Timeline of {html.escape(title)}</h1>\n"
        + (
            '<ul class="summary">'
            + "".join(f"<li>{html.escape(fact)}</li>" for fact in summary)
            + "</ul>\n"
            if summary
            else ""
        )
        + "<table>\n"
        "<tr><th>when (UTC)</th><th>what</th><th>detail</th><th>amount</th><th>key</th>"
        f"<th>by</th></tr>\n{body}\n</table></body></html>\n"
    )
