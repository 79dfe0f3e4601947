"""Check that every local link of the built documentation resolves, raw HTML included.

``mkdocs build --strict`` validates Markdown links and images, but not the ``src``/``href`` of raw HTML
(``<img src=...>`` in a page), nor the ``url(...)`` of stylesheets. This script reads the built site and
checks every ``href``, ``src`` and ``srcset`` of every HTML page and every ``url(...)`` of every CSS file:

- a local reference must name a file of the site (a folder means its ``index.html``);
- with ``--anchors``, a ``#fragment`` on an HTML page must name an ``id`` (or ``name``) on that page;
- a resource the browser loads (script, stylesheet, image, font, preconnect) must be local: the docs
  must render without a network, so a CDN URL is an error. Ordinary hyperlinks to other sites are fine.

Usage::

    mkdocs build --strict --site-dir /tmp/site && python scripts/check_site_links.py /tmp/site
    python scripts/check_site_links.py --build        # builds into a temporary folder first

Exit status 1 and one line per broken reference when something does not resolve.
"""

from __future__ import annotations

import argparse
import posixpath
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
# Attributes whose URL the browser fetches as part of rendering the page (not a link the reader follows).
_RESOURCE_TAGS = {"img", "script", "source", "audio", "video", "iframe", "embed", "track", "input"}
_RESOURCE_RELS = {"stylesheet", "preconnect", "preload", "modulepreload", "icon", "manifest", "dns-prefetch"}
_CSS_URL = re.compile(r"url\(\s*(['\"]?)([^'\")]+)\1\s*\)")
_SKIP_SCHEMES = ("mailto:", "tel:", "javascript:", "data:", "blob:", "about:")


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, bool, int]] = []  # (attribute, url, is_resource, line)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v for k, v in attrs if v is not None}
        for key in ("id", "name") if tag != "meta" else ():
            if key in values:
                self.ids.add(values[key])
        rels = set(values.get("rel", "").lower().split())
        line = self.getpos()[0]
        for attr in ("href", "src"):
            if attr in values:
                resource = tag in _RESOURCE_TAGS or (tag == "link" and bool(rels & _RESOURCE_RELS))
                self.refs.append((attr, values[attr].strip(), resource, line))
        if "srcset" in values:
            for candidate in values["srcset"].split(","):
                if candidate.strip():
                    self.refs.append(("srcset", candidate.split()[0], True, line))


def _is_external(url: str) -> bool:
    return bool(urlsplit(url).scheme) or url.startswith("//")


def _target(site: Path, page: Path, url: str) -> tuple[Path, str]:
    """The file a local URL points to (relative to ``page``, or to the site root for ``/...``)."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if path.startswith("/"):
        joined = posixpath.normpath(path.lstrip("/")) if path.strip("/") else ""
    else:
        base = page.parent.relative_to(site).as_posix()
        joined = posixpath.normpath(posixpath.join(base, path)) if path else page.relative_to(site).as_posix()
    target = site / joined if joined not in ("", ".") else site
    if path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target, parts.fragment


def check(site: Path, *, anchors: bool) -> list[str]:
    site = site.resolve()
    pages = sorted(site.rglob("*.html"))
    if not pages:
        return [f"{site}: no HTML pages (is this a built site folder?)"]
    parsed: dict[Path, _PageParser] = {}
    for page in pages:
        parser = _PageParser()
        parser.feed(page.read_text(encoding="utf-8"))
        parsed[page] = parser

    problems: list[str] = []
    for page, parser in parsed.items():
        where = page.relative_to(site).as_posix()
        for attr, url, resource, line in parser.refs:
            if not url or url.startswith(_SKIP_SCHEMES):
                continue
            if _is_external(url):
                if resource:
                    problems.append(f"{where}:{line}: {attr}={url!r} loads a resource from the network")
                continue
            target, fragment = _target(site, page, url)
            if not target.resolve().is_relative_to(site):
                problems.append(f"{where}:{line}: {attr}={url!r} points outside the site")
            elif not target.is_file():
                problems.append(
                    f"{where}:{line}: {attr}={url!r} -> {target.relative_to(site)} does not exist"
                )
            elif anchors and fragment and target.suffix == ".html":
                ids = parsed[target.resolve()].ids if target.resolve() in parsed else set()
                if unquote(fragment) not in ids:
                    problems.append(f"{where}:{line}: {attr}={url!r}: no id {fragment!r} on that page")

    for sheet in sorted(site.rglob("*.css")):
        where = sheet.relative_to(site).as_posix()
        for match in _CSS_URL.finditer(sheet.read_text(encoding="utf-8", errors="replace")):
            url = match[2].strip()
            if url.startswith(_SKIP_SCHEMES) or url.startswith("#"):
                continue
            if _is_external(url):
                problems.append(f"{where}: url({url}) loads a resource from the network")
                continue
            target, _ = _target(site, sheet, url)
            if not target.is_file():
                problems.append(f"{where}: url({url}) -> {target.relative_to(site)} does not exist")
    return problems


def _build(into: Path) -> None:
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(into)]
    subprocess.run(cmd, cwd=ROOT, check=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check every local href/src (raw HTML included) and CSS url() of the built docs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("site", nargs="?", type=Path, help="the built site folder (mkdocs --site-dir)")
    parser.add_argument(
        "--build", action="store_true", help="run `mkdocs build --strict` into a temporary folder first"
    )
    parser.add_argument(
        "--anchors", action="store_true", help="also check that #fragments name an id on the page"
    )
    args = parser.parse_args(None if argv is None else list(argv))
    if (args.site is None) == (not args.build):
        parser.error("give the built site folder, or --build")
    with tempfile.TemporaryDirectory() as tmp:
        site = args.site
        if args.build:
            site = Path(tmp) / "site"
            _build(site)
        problems = check(site, anchors=args.anchors)
        pages = len(list(Path(site).rglob("*.html")))
    for problem in problems:
        print(problem)
    print(
        f"{len(problems)} broken reference(s) in {pages} pages" if problems else f"links ok ({pages} pages)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
