"""Griffe extension: render the reStructuredText bits of ganblocks' Google docstrings as Markdown.

The docstrings are written for both ``help()`` and this site, so they use a few Sphinx-style constructs
that mkdocstrings would otherwise print verbatim:

- ``:math:`x``` becomes inline math ``\\(x\\)`` and a ``.. math::`` block becomes display math, both
  rendered by ``pymdownx.arithmatex`` + KaTeX;
- ``:func:`~a.b.c```, ``:class:``, ``:meth:``, ``:mod:`` become optional cross-references (a link when
  the target is documented on this site, plain code otherwise);
- the RST escape ``\\ `` (backslash-space, used as in ````torch.compile``\\ d``) is dropped;
- RST simple tables become Markdown tables;
- an ``Example:`` section title becomes ``Examples:``, which griffe renders as doctest code;
- a re-export of a function that shares its module's name (``ganblocks.penalties.gradient_penalty``,
  defined in ``penalties/gradient_penalty.py``) points at the function, not the module.

Loaded by ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import griffe

_ROLE = re.compile(r":(func|class|meth|mod|attr|obj|data):`(~?)([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_MATH_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+\S.*\n|[ \t]*\n)+)", re.M
)
_RST_ESCAPE = re.compile(r"(?<=`)\\ ")
# Griffe's Google parser knows "Examples:" (rendered as doctest code) but takes "Example:" for an admonition.
_EXAMPLE_TITLE = re.compile(r"^Example:[ \t]*$", re.M)
_TABLE_RULE = re.compile(r"^(?P<indent>[ \t]*)=+(?: +=+)+[ \t]*$")


def _math_block(match: re.Match[str]) -> str:
    indent = match["indent"]
    lines = [line.strip() for line in match["body"].rstrip().splitlines()]
    body = "\n".join(f"{indent}{line}" for line in lines if line)
    return f"{indent}$$\n{body}\n{indent}$$\n\n"


def _simple_tables(text: str) -> str:
    """RST "simple tables" (``===  ===`` rules around a header and rows) to Markdown pipe tables."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        rule = _TABLE_RULE.match(lines[i])
        end = i + 1
        if rule:
            while end < len(lines) and lines[end].strip() != lines[i].strip():
                end += 1
            end += 1  # the header's closing rule
            while end < len(lines) and lines[end].strip() != lines[i].strip():
                end += 1
        if not rule or end >= len(lines):
            out.append(lines[i])
            i += 1
            continue
        indent = rule["indent"]
        spans = [(m.start(), m.end()) for m in re.finditer(r"=+", lines[i])]
        starts = [a for a, _ in spans]

        last = spans[-1][1]
        rows = [
            [line[a:b].strip() for a, b in zip(starts, [*starts[1:], max(len(line), last) + 1])]
            for line in lines[i + 1 : end]
            if line.strip() and not _TABLE_RULE.match(line)
        ]
        out.append(indent + "| " + " | ".join(rows[0]) + " |")
        out.append(indent + "|" + "---|" * len(spans))
        out.extend(indent + "| " + " | ".join(r) + " |" for r in rows[1:])
        i = end + 1
    return "\n".join(out)


def _canonical(identifier: str, obj: griffe.Object | None) -> str:
    """The canonical path of ``identifier`` (resolved from ``obj``'s scope when it is a bare name), or itself.

    mkdocstrings registers every rendered object under its canonical path too, so a reference to a
    re-export (``ganblocks.penalties.r1_penalty``) links wherever the object is documented.
    """
    if obj is None:
        return identifier
    if "." not in identifier:
        try:
            scope = obj if obj.is_module else (obj.parent or obj)
            identifier = scope.resolve(identifier)
        except Exception:  # unresolvable names stay as written
            return identifier
    try:
        target = obj.modules_collection.get_member(identifier)
        name = identifier.rsplit(".", 1)[-1]
        if target.is_module and name in target.members:
            # ganblocks.penalties.gradient_penalty is both a module and the function it defines: mean the
            # function.
            target = target.members[name]
        return str(target.canonical_path)
    except Exception:  # outside the package (torch.*) or unknown
        return identifier


def convert(text: str, obj: griffe.Object | None = None) -> str:
    """Translate the RST constructs of one docstring to Markdown."""

    def role(match: re.Match[str]) -> str:
        kind, short, target = match[1], match[2], match[3].strip()
        title = target.rsplit(".", 1)[-1] if short else target
        if kind in ("func", "meth"):
            title += "()"
        return f'<autoref identifier="{_canonical(target, obj)}" optional><code>{title}</code></autoref>'

    text = _simple_tables(text)
    text = _MATH_BLOCK.sub(_math_block, text + "\n").rstrip("\n")
    text = _MATH_ROLE.sub(lambda m: "\\(" + m[1] + "\\)", text)
    text = _ROLE.sub(role, text)
    text = _EXAMPLE_TITLE.sub("Examples:", text)
    return _RST_ESCAPE.sub("", text)


def _retarget_shadowed_aliases(pkg: griffe.Module) -> None:
    """Point re-exports of a function named like its module at the function.

    ``ganblocks/penalties/__init__.py`` does ``from .gradient_penalty import gradient_penalty``: at run time
    the name is the function, but griffe keeps the submodule, so ``ganblocks.functional.gradient_penalty``
    would document a module. (The fused ops live in packages ``ops/<op>/`` that ``ganblocks.ops`` does not
    re-export, so they no longer need this.)
    """
    for module in [o for o in _walk(pkg) if o.is_module]:
        for name, member in list(module.members.items()):
            if not member.is_alias:
                continue
            try:
                target = member.final_target
            except Exception:  # external or unresolvable aliases stay as they are
                continue
            if target.is_module and name in target.members and not target.members[name].is_module:
                module.set_member(name, griffe.Alias(name, target.members[name], parent=module))


def _walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)  # type: ignore[arg-type]


_CALLS = ("forward", "__call__")


def _document_calls(pkg: griffe.Module) -> None:
    """Give an undocumented ``forward`` / ``__call__`` a one-line docstring, so the reference shows its signature.

    mkdocstrings leaves out members without a docstring; a module's call signature (``r1(D, real,
    condition=, scaler=)``) is what a reader needs most.
    """
    for cls in [o for o in _walk(pkg) if o.is_class]:
        for name in _CALLS:
            member = cls.members.get(name)
            if member is None or member.is_alias or member.docstring is not None:
                continue
            call = "module(...)" if name == "forward" else "instance(...)"
            text = f"Called as `{call}` with these arguments; see the class for what it computes."
            member.docstring = griffe.Docstring(text, parent=member)


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring of the package once it is fully loaded (so re-exports resolve)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        _retarget_shadowed_aliases(pkg)
        _document_calls(pkg)
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value, obj)
