"""Copy KaTeX into docs/assets/katex/ so the documentation renders formulas without a network.

Usage (from the repository root; needs npm once, the docs build never does)::

    npm pack katex@0.19.1 --pack-destination /tmp        # or: npm install katex in a scratch folder
    tar xzf /tmp/katex-0.19.1.tgz -C /tmp                  # unpacks to /tmp/package
    python scripts/vendor_katex.py /tmp/package

Copied: ``katex.min.js``, ``katex.min.css``, ``contrib/auto-render.min.js``, the WOFF2 fonts and the
licence. Every browser that runs the Material theme reads WOFF2, so the WOFF/TTF fallbacks are left out
and their ``url(...)`` entries are removed from the stylesheet (no reference to a missing file remains,
which ``scripts/check_site_links.py`` verifies).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

DEST = Path(__file__).resolve().parent.parent / "docs" / "assets" / "katex"
FILES = ("katex.min.js", "contrib/auto-render.min.js")
# `,url(fonts/X.woff) format("woff")` and the same for truetype: the fallbacks after the woff2 source.
_FALLBACK = re.compile(r',url\(fonts/[^)]+\.(?:woff|ttf)\) format\("(?:woff|truetype)"\)')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("package", type=Path, help="the unpacked katex npm package (holds package.json)")
    parser.add_argument("--dest", type=Path, default=DEST, help="folder to write the vendored files to")
    args = parser.parse_args()

    pkg: Path = args.package
    version = json.loads((pkg / "package.json").read_text())["version"]
    dist = pkg / "dist"
    dest: Path = args.dest
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "contrib").mkdir(parents=True)
    (dest / "fonts").mkdir()
    for name in FILES:
        shutil.copyfile(dist / name, dest / name)
    css = _FALLBACK.sub("", (dist / "katex.min.css").read_text())
    (dest / "katex.min.css").write_text(css)
    for font in sorted((dist / "fonts").glob("*.woff2")):
        shutil.copyfile(font, dest / "fonts" / font.name)
    shutil.copyfile(pkg / "LICENSE", dest / "LICENSE")
    (dest / "VERSION").write_text(f"katex {version} (npm), vendored by scripts/vendor_katex.py\n")
    missing = [u for u in re.findall(r"url\(([^)]+)\)", css) if not (dest / u).is_file()]
    if missing:
        raise SystemExit(f"katex.min.css refers to files that were not copied: {missing}")
    print(f"KaTeX {version} vendored into {dest}")


if __name__ == "__main__":
    main()
