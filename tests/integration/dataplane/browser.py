"""Debian's chromium, headless, as the stats page's real browser.

No driver: ``dump_dom`` loads a URL and returns the DOM after scripts and parsing
(``--dump-dom``); ``screenshot`` writes a PNG. Actions are done by posting the very
form the page rendered (``Form`` parses it out of the dumped DOM), which is what a
click on its "Apply" button sends.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def available() -> bool:
    return Path(CHROMIUM).exists()


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="lbcore-chromium-") as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def dump_dom(url: str) -> str:
    out = _run("--dump-dom", url)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def screenshot(url: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = _run(f"--screenshot={path}", "--window-size=1400,900", url)
    assert out.returncode == 0 and path.exists(), out.stderr[-2000:]


class Page(HTMLParser):
    """Server rows (id -> class, status cell) and the admin forms of a stats page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.forms: list[dict[str, object]] = []
        self._row: str | None = None
        self._cells: list[str] = []
        self._in_td = False
        self._form: dict[str, object] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr" and a.get("id", "").startswith("sv-"):
            self._row, self._cells = a["id"], []
            self.rows[a["id"]] = {"class": a.get("class", "")}
        elif tag == "td" and self._row is not None:
            self._in_td = True
            self._cells.append("")
        elif tag == "form":
            self._form = {"action": a.get("action", ""), "method": a.get("method", "get"),
                          "hidden": {}, "checkboxes": [], "actions": []}  # fmt: skip
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            if a.get("type") == "hidden":
                self._form["hidden"][a["name"]] = a.get("value", "")  # type: ignore[index]
            elif a.get("type") == "checkbox":
                self._form["checkboxes"].append((a["name"], a["value"]))  # type: ignore[attr-defined]
        elif tag == "option" and self._form is not None:
            self._form["actions"].append(a.get("value", ""))  # type: ignore[attr-defined]

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_td = False
        elif tag == "tr" and self._row is not None:
            cells = self._cells
            # with admin forms a checkbox cell comes first; the name cell precedes status
            name_at = 1 if len(cells) > 1 and cells[0] == "" else 0
            if len(cells) > name_at + 1:
                self.rows[self._row]["status"] = cells[name_at + 1]
            self._row = None
        elif tag == "form":
            self._form = None

    def handle_data(self, data: str) -> None:
        if self._in_td and self._cells:
            self._cells[-1] += data
