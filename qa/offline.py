"""HTML that works offline: the check every page passes, and Great Expectations' Data Docs made self-contained.

Stewards of hospital data often work without internet access. A page ctcurate writes may fetch
nothing from another host: :func:`external_references` lists every script, style sheet, image,
icon or CSS ``url()`` a page would load from elsewhere (plain links a reader may follow are not
fetched and are allowed).

Data Docs load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from CDNs and their logo from
a URL that carries the data context's id; offline, the pages lose their styles and the index's
validation list, which bootstrap-table fills from a script, stays empty. :func:`make_offline`
rewrites every page of a Data Docs site: external scripts and style sheets are dropped, the logo
points at the copy the site holds, icons become characters, each bootstrap-table is written out as
plain table rows (each row linking to its page), and the style sheet ctcurate ships
(``qa/templates/offline.css``) is linked instead.
"""

from __future__ import annotations

import ast
import html
import logging
import re
from html.parser import HTMLParser
from pathlib import Path

from curation.atomic import atomic_write_text, copy_file

__all__ = ["external_references", "make_offline", "OFFLINE_CSS"]

log = logging.getLogger(__name__)
OFFLINE_CSS = Path(__file__).parent / "templates" / "offline.css"
_EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)  # http://, https://, //host
_ICONS = {"fa-check-circle": "\u2714", "fa-times-circle": "\u2718", "fa-times": "\u2718",
          "fa-exclamation-triangle": "\u26a0", "fa-question-circle": "?"}


class _Fetches(HTMLParser):
    """Collects what a browser would fetch: script src, stylesheet/icon href, img/source src, CSS url()."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []  # (what, url)
        self._in_style = False

    def _css(self, what: str, text: str) -> None:
        self.found += [(f"{what} url()", u.strip()) for u in re.findall(r"url\(\s*['\"]?([^'\")]+)", text)]
        self.found += [(f"{what} @import", u) for u in re.findall(r"@import\s+['\"]([^'\"]+)", text)]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag in ("script", "img", "source", "iframe", "embed", "video", "audio", "input") and values.get("src"):
            self.found.append((f"<{tag} src>", values["src"]))
        if tag == "link" and values.get("href") and values.get("rel", "").lower() not in ("canonical", "alternate"):
            self.found.append((f"<link rel={values.get('rel', '')}>", values["href"]))
        if tag == "object" and values.get("data"):
            self.found.append(("<object data>", values["data"]))
        self._css(f"<{tag} style>", values.get("style", ""))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._css("<style>", data)


def external_references(page: Path | str) -> list[str]:
    """What ``page`` (an HTML or CSS file, or HTML text) would load from another host; empty when none."""
    text = Path(page).read_text(encoding="utf-8") if isinstance(page, Path) else page
    parser = _Fetches()
    if isinstance(page, Path) and page.suffix == ".css":
        parser._css(page.name, text)
    else:
        parser.feed(text)
    return [f"{what} {url}" for what, url in parser.found if _EXTERNAL.match(url)]


def _literal(text: str, start: int) -> tuple[object, int]:
    """The Python literal (a list) beginning at ``text[start]``, and where it ends."""
    depth, i, quote = 0, start, ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return ast.literal_eval(text[start:i + 1]), i + 1
        i += 1
    raise ValueError("unterminated literal")


def _static_tables(page: str) -> str:
    """Write each ``$('#id').bootstrapTable({columns: [...], data: [...]})`` out as rows of its ``<table>``."""
    for match in list(re.finditer(r"\$\('#([\w-]+)'\)\.bootstrapTable\(", page)):
        table_id = match.group(1)
        body = page[match.end():]
        try:
            columns, _ = _literal(body, body.index("columns:") + len("columns:") + 1)
            data, _ = _literal(body, body.index("data:") + len("data:") + 1)
        except ValueError:
            log.warning("Data Docs: the table %s could not be read; it stays empty offline", table_id)
            continue
        if not isinstance(columns, list) or not isinstance(data, list):
            continue
        head = "".join(f"<th>{html.escape(str(c.get('title', '')))}</th>" for c in columns)
        rows = []
        for row in data:
            link = row.get("_table_row_link_path")
            cells = []
            for number, column in enumerate(columns):
                value = str(row.get(column.get("field"), ""))
                if column.get("field") == "validation_success" and row.get("_validation_success_text"):
                    value += f" {html.escape(str(row['_validation_success_text']))}"
                if number == 0 and link:
                    value = f"<a href='{html.escape(str(link))}'>{value}</a>"
                cells.append(f"<td>{value}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        filled = f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        empty = re.search(rf"(<table\s+id=\"{re.escape(table_id)}\"[^>]*>)\s*(</table>)", page)
        if empty is not None:
            page = page[:empty.end(1)] + filled + page[empty.start(2):]
    return page


_CSS_URL = re.compile(r"url\(\s*['\"]?(?:https?:)?//[^'\")]*['\"]?\s*\)")


def _page_offline(page: str, root: str) -> str:
    page = _static_tables(page)
    page = _CSS_URL.sub(f"url('{root}static/images/logo-long.png')", page)
    page = re.sub(r"<script\b[^>]*\bsrc=\"(?:https?:)?//[^\"]*\"[^>]*>\s*</script>", "", page)
    page = re.sub(r"<link\b[^>]*\bhref=\"(?:https?:)?//[^\"]*\"[^>]*>", "", page)
    page = re.sub(r"<img\b([^>]*)\bsrc=\"(?:https?:)?//[^\"]*logo[^\"]*\"",
                  lambda m: f"<img{m.group(1)}src=\"{root}static/images/logo-long.png\"", page)
    page = re.sub(r"<img\b[^>]*\bsrc=\"(?:https?:)?//[^\"]*\"[^>]*>", "", page)

    def icon(m: re.Match[str]) -> str:
        names = m.group(1).split()
        symbol = next((_ICONS[n] for n in names if n in _ICONS), "")
        keep = " ".join(n for n in names if not n.startswith("fa"))
        return f"<span class=\"icon {keep}\">{symbol}"
    page = re.sub(r"<i\s+class=\"([^\"]*\bfas?\b[^\"]*)\"\s*>", icon, page)
    page = re.sub(r"(<span class=\"icon [^\"]*\">.?)\s*</i>", r"\1</span>", page)
    link = f"<link rel=\"stylesheet\" href=\"{root}static/styles/ctcurate_offline.css\">"
    return page.replace("</head>", link + "</head>", 1) if link not in page else page


def make_offline(site: Path) -> int:
    """Rewrite every page and style sheet of the Data Docs site in ``site`` to fetch nothing; the pages changed."""
    site = Path(site)
    styles = site / "static" / "styles"
    styles.mkdir(parents=True, exist_ok=True)
    copy_file(OFFLINE_CSS, styles / "ctcurate_offline.css")
    for sheet in styles.glob("*.css"):
        text = sheet.read_text(encoding="utf-8")
        local = _CSS_URL.sub("url('../images/logo-long.png')", text)
        if local != text:
            atomic_write_text(sheet, local)
    changed = 0
    for page in sorted(site.rglob("*.html")):
        depth = len(page.relative_to(site).parts) - 1
        text = page.read_text(encoding="utf-8")
        offline = _page_offline(text, "../" * depth)
        if offline != text:
            atomic_write_text(page, offline)
            changed += 1
    log.info("Data Docs: %d page(s) made to work offline", changed)
    return changed
