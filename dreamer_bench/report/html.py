"""``report --html``: report.md as one self-contained HTML file, the figures embedded as data URIs,
so that it can be mailed, attached or opened offline as it is.

report.md is written by this package, so the converter covers the Markdown it writes and no more:
headings, paragraphs, pipe tables, images on a line of their own, bullet lists, **bold**,
*italic* and `code`. Everything else is escaped as text.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border-top: 1px solid #ccc; border-bottom: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }
th { border-top: 2px solid #222; border-bottom: 1.5px solid #222; }
tr:last-child td { border-bottom: 2px solid #222; }
img { max-width: 100%; display: block; margin: 0.6em 0; }
figure { margin: 0.8em 0; }
code { background: #f3f3f3; padding: 0 0.2em; }
em { color: #444; }
"""

_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)$")
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".svg": "image/svg+xml"}


def inline(text: str) -> str:
    """Escape, then code, bold and italic spans."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        part = html.escape(part)
        part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
        part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", part)
        out.append(part)
    return "".join(out)


def embedded(folder: Path, src: str) -> str:
    """An image file beside the report as a data URI (a missing one stays a relative link)."""
    path = folder / src
    mime = _MIME.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return html.escape(src)
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_to_html(text: str, folder: Path, title: str = "dreamer-bench report") -> str:
    lines = text.splitlines()
    body, paragraph, i = [], [], 0

    def flush():
        if paragraph:
            body.append("<p>" + inline(" ".join(paragraph)) + "</p>")
            paragraph.clear()

    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            flush()
            i += 1
            continue
        heading = re.match(r"^(#{1,6}) (.*)$", line)
        image = _IMAGE.match(line.strip())
        if heading:
            flush()
            level = len(heading.group(1))
            body.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
            i += 1
        elif image:
            flush()
            alt, src = image.groups()
            body.append(f'<figure><img alt="{html.escape(alt)}" src="{embedded(folder, src)}"></figure>')
            i += 1
        elif line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|(\s*:?-+:?\s*\|)+\s*$", lines[i + 1].strip()):
            flush()
            rows = ["<table>", "<thead><tr>" + "".join(f"<th>{inline(c)}</th>" for c in _cells(line)) + "</tr></thead>",
                    "<tbody>"]
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in _cells(lines[i])) + "</tr>")
                i += 1
            body.append("\n".join(rows + ["</tbody>", "</table>"]))
        elif line.startswith("- "):
            flush()
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{inline(lines[i][2:])}</li>")
                i += 1
            body.append("<ul>" + "".join(items) + "</ul>")
        else:
            paragraph.append(line.strip())
            i += 1
    flush()
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write_html(report_md: Path) -> Path:
    """report.html beside report.md, self-contained."""
    out = report_md.with_suffix(".html")
    out.write_text(markdown_to_html(report_md.read_text(), report_md.parent), encoding="utf-8")
    return out
