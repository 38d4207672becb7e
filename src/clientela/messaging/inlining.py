"""The shop's layout with its CSS inlined once per brand, and each message's body inlined
alone, inside the chain of elements that holds it in the layout: a third of inlining a
whole page, which was the largest part of making a message.

The result is the page `css_inline` makes of the whole, byte for byte, whenever that can be
told: the layout's rules use no selector that looks at siblings or state (`+`, `~`, `:`),
the body brings no CSS of its own, and the body closes what it opens (the elements around
it come out of the inliner as they went in). Otherwise the whole page is inlined.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from html.parser import HTMLParser
from typing import Any

import css_inline
from jinja2 import Template
from markupsafe import Markup

_BODY_START, _BODY_END = "<!--clientela:body-->", "<!--clientela:/body-->"
_VALUES = {"subject": "clientela0subject0f3a9", "unsubscribe_url": "clientela0unsub0f3a9",
           "preferences_url": "clientela0prefs0f3a9"}
_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.S | re.I)
_AT_RULES = re.compile(r"@[^{;]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}|@[^{};]*;")
_SELECTORS = re.compile(r"([^{}]+)\{[^{}]*\}")
_OWN_CSS = re.compile(r"<style|<link", re.I)
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}


class PageInliner:
    """Pages of one layout and brand, CSS inlined."""

    def __init__(self, layout: Template, inliner: css_inline.CSSInliner,
                 shop: Mapping[str, Any]) -> None:
        self.layout, self.inliner, self.shop = layout, inliner, shop
        raw = layout.render(body=Markup(_BODY_START), shop=shop, **_VALUES)
        self.pieces = _pieces(inliner.inline(raw)) if _safe_layout(raw) else None
        self.chain_open, self.chain_close = _chain(raw)
        probe = inliner.inline(self.chain_open + _BODY_START + _BODY_END + self.chain_close)
        self.head = probe[:probe.find(_BODY_START) + len(_BODY_START)]
        self.tail = probe[probe.find(_BODY_END):]

    def page(self, body: str, *, subject: str, unsubscribe_url: str,
             preferences_url: str) -> str:
        """The layout around `body`, with these values, CSS inlined."""
        values = {"subject": subject, "unsubscribe_url": unsubscribe_url,
                  "preferences_url": preferences_url}
        inlined = None if self.pieces is None else self._body(body)
        if inlined is None or self.pieces is None:
            return self.inliner.inline(self.layout.render(body=Markup(body), shop=self.shop,
                                                          **values))
        values["body"] = inlined
        return "".join(_ESCAPES[kind](values[piece]) if kind else piece
                       for piece, kind in self.pieces)

    def _body(self, body: str) -> str | None:
        """The body inlined inside its chain; None when that may differ from the page's."""
        if _OWN_CSS.search(body) or _BODY_END in body:
            return None
        out = self.inliner.inline(self.chain_open + _BODY_START + body + _BODY_END
                                  + self.chain_close)
        if not (out.startswith(self.head) and out.endswith(self.tail)) or len(out) < len(
                self.head) + len(self.tail):
            return None
        return out[len(self.head):len(out) - len(self.tail)]


def _safe_layout(raw: str) -> bool:
    """Whether the layout's rules match an element by it and its ancestors alone."""
    css = _AT_RULES.sub("", " ".join(_STYLE.findall(raw)))
    return raw.count(_BODY_START) == 1 and not any(
        re.search(r"[+~:]", selector) for selector in _SELECTORS.findall(css))


def _pieces(inlined: str) -> tuple[tuple[str, str], ...] | None:
    """The inlined layout as (text, "") pieces and (value name, "text" | "attribute" |
    "body") holes; None when a value landed where it cannot be put back exactly."""
    markers = {_BODY_START: "body", **{mark: name for name, mark in _VALUES.items()}}
    pieces: list[tuple[str, str]] = []
    for piece in re.split(f"({'|'.join(map(re.escape, markers))})", inlined):
        if piece not in markers:
            pieces.append((piece, ""))
            continue
        before = "".join(text for text, kind in pieces if not kind)
        in_tag = before.rfind("<") > before.rfind(">")
        in_script = re.search(r"<(style|script)\b[^>]*>[^<]*$", before, re.I)
        if in_script or (markers[piece] == "body" and in_tag):
            return None
        pieces.append((markers[piece], "body" if markers[piece] == "body" else
                       "attribute" if in_tag else "text"))
    return tuple(pieces)


def _text(value: str) -> str:
    """A text value as the inliner writes it back (html5ever's serializer)."""
    return (value.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace("<", "&lt;")
            .replace(">", "&gt;"))


def _attribute(value: str) -> str:
    return value.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace('"', "&quot;")


_ESCAPES: dict[str, Callable[[str], str]] = {"text": _text, "attribute": _attribute,
                                             "body": str}


class _Ancestors(HTMLParser):
    """The start tags open where the body goes, and the layout's <style> blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, str]] = []
        self.found = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if not self.found and tag not in _VOID:
            self.open.append((tag, self.get_starttag_text() or f"<{tag}>"))

    def handle_endtag(self, tag: str) -> None:
        if not self.found and any(name == tag for name, _ in self.open):
            while self.open.pop()[0] != tag:
                pass

    def handle_comment(self, data: str) -> None:
        if f"<!--{data}-->" == _BODY_START:
            self.found = True


def _chain(raw: str) -> tuple[str, str]:
    """(the document up to the body: doctype, styles and the start tags of its ancestors,
    the end tags after it)."""
    parser = _Ancestors()
    parser.feed(raw)
    tags = [(name, text) for name, text in parser.open if name != "head"]
    styles = "".join(f"<style>{css}</style>" for css in _STYLE.findall(raw))
    doctype = "<!doctype html>" if raw.lstrip().lower().startswith("<!doctype html") else ""
    opening = "".join(text if name != "html" else f"{text}<head>{styles}</head>"
                      for name, text in tags)
    return doctype + opening, "".join(f"</{name}>" for name, _ in reversed(tags))
