"""E-mail templates: sandboxed Jinja2 for the subject, HTML and text parts, the shop's layout
around the HTML, CSS inlined for mail clients, and a plain-text part derived when none is
written. Pure functions: the merge fields come in as plain data (`messaging.context`)."""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from functools import cache, lru_cache
from html import unescape
from pathlib import Path
from typing import Any, Literal

import css_inline
from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from clientela.core.errors import InvalidInput

Part = Literal["subject", "html", "text"]
LAYOUTS = Path(__file__).resolve().parent.parent / "web" / "templates" / "email"
_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")


@dataclass(frozen=True)
class TemplateParts:
    subject: str
    html: str
    text: str | None  # None: derived from the rendered HTML


@dataclass(frozen=True)
class Brand:
    shop_name: str
    color: str  # "#0f766e"; it is written into the layout's CSS, so nothing else is accepted
    logo_url: str | None
    address: str | None  # the postal address in the footer

    def __post_init__(self) -> None:
        if not _COLOR.fullmatch(self.color):
            raise InvalidInput(f"color: {self.color[:20]!r} must be a hex colour like #0f766e",
                               code="invalid_color")


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


def check(parts: TemplateParts) -> None:
    """Compile the three parts; InvalidInput naming the part and line of the first fault."""
    _compiled("subject", parts.subject)
    _compiled("html", parts.html)
    if parts.text is not None:
        _compiled("text", parts.text)


def names_read(parts: TemplateParts) -> frozenset[str]:
    """The top-level names the three parts read (`customer`, `recommended`, ...): the merge
    fields a send must fetch for them."""
    sources = [("subject", parts.subject), ("html", parts.html)]
    if parts.text is not None:
        sources.append(("text", parts.text))
    return frozenset().union(*(_names(part, source) for part, source in sources))


@lru_cache(maxsize=512)
def _names(part: Part, source: str) -> frozenset[str]:
    _compiled(part, source)  # InvalidInput for a template that does not compile
    environment = _ENVIRONMENTS["html" if part == "html" else "text"]
    return frozenset(meta.find_undeclared_variables(environment.parse(source)))


def render(parts: TemplateParts, context: Mapping[str, Any], *, brand: Brand,
           unsubscribe_url: str, preferences_url: str) -> Rendered:
    """One personalised message: the subject on one line, the HTML inside the shop's layout
    with its CSS inlined, and the text part, which ends with the unsubscribe link."""
    links = {"shop": _shop(brand), "unsubscribe_url": unsubscribe_url,
             "preferences_url": preferences_url}
    values = {**context, **links}
    subject = " ".join(_run("subject", parts.subject, values).split())
    body = _run("html", parts.html, values)
    page = _layout("layout.html").render(body=Markup(body), subject=subject, **links)
    words = (_run("text", parts.text, values) if parts.text is not None
             else plain_text(body))
    text = _layout("layout.txt").render(body=words.strip(), **links)
    return Rendered(subject=subject, html=_inliner().inline(page), text=text)


@lru_cache(maxsize=8)
def _shop(brand: Brand) -> dict[str, Any]:
    """The brand as templates read it: plain data, like the merge fields (the sandbox checks
    every attribute read from an object, and a message reads about ten)."""
    return asdict(brand)


def plain_text(html: str) -> str:
    """A readable plain-text version of HTML: paragraphs, line breaks, "- " list items,
    links as "text (url)", images as their alt text; no tags, no entities."""
    return _plain(html)


class _Blank(ChainableUndefined):
    """A missing value: renders as nothing, and so does anything read or called from it
    (`last_order.items[0].name` for a customer without orders); it is never greater or
    less than anything."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> _Blank:  # type: ignore[override]
        return self

    def _never(self, other: Any) -> bool:
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _never  # type: ignore[assignment]


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's `default`, for None too: what a customer lacks is missing or None, and a
    template should not have to tell which."""
    if value is None or isinstance(value, Undefined) or (boolean and not value):
        return default_value
    return value


def _finalize(value: Any) -> Any:
    return "" if value is None else value


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, where an unsafe attribute is an error, not a blank, and a
    dotted name on plain data reads its key first (`cart.items` is the cart's items, not
    the dict's method)."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Merge fields are plain dicts: they skip the slower test for any Mapping.
        if (type(obj) is dict or isinstance(obj, Mapping)) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"{attribute!r} of a {type(obj).__name__} is not allowed")


def _environment(*, html: bool) -> _Sandbox:
    environment = _Sandbox(autoescape=html, undefined=_Blank, finalize=_finalize,
                           auto_reload=False)
    environment.filters["default"] = environment.filters["d"] = _default
    return environment


_ENVIRONMENTS = {"html": _environment(html=True), "text": _environment(html=False)}


@lru_cache(maxsize=512)
def _compiled(part: Part, source: str) -> Template:
    """The template compiled once per text (a campaign renders the same one 100,000 times)."""
    environment = _ENVIRONMENTS["html" if part == "html" else "text"]
    try:
        tree = environment.parse(source, filename=f"<{part}>")
        _refuse_private_names(part, tree)
        code = environment.compile(tree, name=part, filename=f"<{part}>")
    except TemplateSyntaxError as error:
        raise InvalidInput(f"{part}: line {error.lineno}: {error.message}",
                           code="invalid_template") from None
    return environment.template_class.from_code(environment, code,
                                                environment.make_globals(None))


def _refuse_private_names(part: Part, tree: nodes.Template) -> None:
    """Names starting with "_" lead to Python internals; refuse them when the template is
    saved rather than when it is first sent (the sandbox refuses them then too)."""
    found = [(lineno, name) for lineno, name in _names_read(tree) if name.startswith("_")]
    if found:
        line = min(lineno for lineno, _name in found)
        # The walk meets `a.b.c` from the outside in: reversed, they read as written.
        names = ", ".join(dict.fromkeys(repr(name) for lineno, name in reversed(found)
                                        if lineno == line))
        raise InvalidInput(f"{part}: line {line}: not allowed: {names} (names starting with "
                           "'_' are Python internals)", code="invalid_template")


def _names_read(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    """Each attribute or key a template reads by a name written in it, with its line."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            yield node.lineno, node.attr
        elif isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                yield node.lineno, node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            name = node.args[0]
            if isinstance(name, nodes.Const) and isinstance(name.value, str):
                yield node.lineno, name.value


def _run(part: Part, source: str, values: Mapping[str, Any]) -> str:
    template = _compiled(part, source)
    try:
        return template.render(values)
    except Exception as error:  # anything a template does wrong is the template's fault
        raise InvalidInput(f"{part}: line {_line(error, part)}: {_describe(error)}",
                           code="invalid_template") from error


def _line(error: Exception, part: Part) -> int | str:
    """The template line the error happened on (Jinja rewrites its traceback so)."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if frame.filename == f"<{part}>"]
    return (frames[-1].lineno or "?") if frames else "?"


def _describe(error: Exception) -> str:
    if isinstance(error, SecurityError):
        return f"not allowed in a template: {error}"
    return f"{type(error).__name__}: {error}"


@cache
def _layout(name: str) -> Template:
    environment = _ENVIRONMENTS["html" if name.endswith(".html") else "text"]
    return environment.from_string((LAYOUTS / name).read_text(encoding="utf-8"))


@cache
def _inliner() -> css_inline.CSSInliner:
    # Media queries cannot be inlined: they stay in a <style> for the clients that read it.
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


# HTML to text by a few passes of regular expressions, each over the whole message in C:
# html.parser, token by token in Python, took three quarters of `render`. (A ">" inside a
# quoted attribute ends a tag early here; Jinja escapes the ones that values bring.)
_HIDDEN = re.compile(r"<!--.*?-->|<(style|script|head|title|template)\b.*?</\1\s*>",
                     re.S | re.I)
_LINK = re.compile(r"<a\b([^>]*)>(.*?)</a\s*>", re.S | re.I)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_IMAGE = re.compile(r"<img\b[^>]*>", re.I)
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_BREAKS = [(re.compile(r"</?(?:p|div|h[1-6]|ul|ol|table|tr|blockquote|section|article|header"
                       r"|footer|hr|center|pre|address|dl|dt|dd|form)\b[^>]*>", re.I), "\n\n"),
           (re.compile(r"<(?:br|td|th)\b[^>]*>", re.I), "\n"),
           (re.compile(r"<li\b[^>]*>", re.I), "\n- ")]
_TAG = re.compile(r"<[^>]*>")
_BLANK_LINES = re.compile(r"\n{3,}")


def _plain(html: str) -> str:
    html = " ".join(_HIDDEN.sub("", html).split())
    html = _links(html)
    html = _IMAGE.sub(lambda image: f" {_value(_ALT, image.group())} ", html)
    for pattern, replacement in _BREAKS:
        html = pattern.sub(replacement, html)
    lines = unescape(_TAG.sub("", html)).split("\n")
    return _BLANK_LINES.sub("\n\n", "\n".join(" ".join(line.split()) for line in lines)).strip()


def _links(html: str) -> str:
    """Links as "words (address)", the address alone when it is its own words, nothing for
    a picture linking where a worded link goes too (a product's photo next to its name)."""
    links = [(found, _value(_HREF, found[1]).strip(), _TAG.sub("", found[2]).strip())
             for found in _LINK.finditer(html)]
    worded = {href for _found, href, words in links if words}
    pieces, done = [], 0
    for found, href, words in links:
        pieces.append(html[done:found.start()])
        done = found.end()
        if words or href not in worded:
            pieces.append(found[2] if not href or href.startswith("#") or href == words
                          else f"{found[2]} ({href})")
    pieces.append(html[done:])
    return "".join(pieces)


def _value(attribute: re.Pattern[str], tag: str) -> str:
    found = attribute.search(tag)
    return "" if found is None else next((value for value in found.groups() if value), "")
