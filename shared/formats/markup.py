"""A page's markup without what no step of the chain reads: the code inside its scripts and
style sheets. It is often most of a news page's bytes, which then need not travel through the
queue, nor be worked through by extractors that only drop it in the end.

Everything else stays as it was, byte for byte, the `<script>` and `<style>` tags included, so
the page parses to the same tree less that code, and the main text, the metadata and the
JSON-LD (kept: it describes the article) come out the same. The page is read the way an HTML
parser reads it (HTML5 tokenization, as lxml's libxml2 does): a `<script>` inside a comment, an
attribute value, a `<title>` or a `<textarea>` is not a script, and inside a script a `<!--`
escape can hold a `<script>...</script>` that does not end it. Where the markup stops being
plain to read (a tag or comment left open at the end, say), the rest of the page stays as it is.
"""

from __future__ import annotations

import re

# re.ASCII with IGNORECASE: letters match their ASCII case only, as in HTML (never "ſ" for "s").
_FLAGS = re.ASCII | re.IGNORECASE
_SPACE = r"\t\n\f\r "
_CODE_NAMES = ("script", "style")  # their text is code: left out
_RAW_NAMES = ("xmp", "iframe", "noembed", "noframes", "title", "textarea")  # text that holds no tags
# Those names and "plaintext" (whose text runs to the end of the page), each ended as a tag name
# ends; grouped by first letter, which rules most tags out at once.
_SPECIAL = rf"(?:s(?:cript|tyle)|t(?:itle|extarea)|xmp|iframe|no(?:embed|frames)|plaintext)(?=[{_SPACE}/>])"
# A tag's attributes as the tokenizer reads them: a quote opens a value only right after "=",
# and a name may hold quotes.
_VALUE = rf"(?:\"[^\"]*+\"|'[^']*+'|(?=>)|[^{_SPACE}>\"'][^{_SPACE}>]*+)"
_ATTRIBUTES = (
    rf"(?:[{_SPACE}]++|/(?!>)|[^{_SPACE}/>][^{_SPACE}/>=]*+(?:[{_SPACE}]*+=[{_SPACE}]*+{_VALUE}|(?![{_SPACE}]*+=)))*+"
)
# The same for most tags, read faster: names without quotes, a quoted value right after "=".
_PLAIN_ATTRIBUTES = (
    rf"(?:[{_SPACE}/]++[^{_SPACE}/>=\"']++(?:=(?:\"[^\"]*+\"|'[^']*+'|[^{_SPACE}>\"']++|(?=>)))?+)*+[{_SPACE}/]*+>"
)
_ORDINARY_TAG = rf"<(?:/|(?!{_SPECIAL}))[a-z]"
# Markup read past as it is: text, tags (but those above), comments, declarations.
_ORDINARY = (
    r"(?:[^<]++"
    rf"|{_ORDINARY_TAG}(?:[^\"'>]*+>|[^{_SPACE}/>]*+{_PLAIN_ATTRIBUTES})"
    r"|<!--(?:>|->|.*?--!?>)"
    r"|<!(?!--)[^>]*+>|<\?[^>]*+>"
    rf"|{_ORDINARY_TAG}[^{_SPACE}/>]*+{_ATTRIBUTES}/?>"
    r"|</(?![a-z])[^>]*+>"
    r"|<(?![a-z!?/]))*+"
)
_NEXT_SPECIAL = re.compile(rf"{_ORDINARY}(?P<tag><(?P<name>{_SPECIAL}){_ATTRIBUTES}(?P<empty>/?)>)", re.DOTALL | _FLAGS)
_END_TAGS = {name: re.compile(f"</{name}[{_SPACE}/>]", _FLAGS) for name in ("style", *_RAW_NAMES)}
_SCRIPT = f"script[{_SPACE}/>]"
_SCRIPT_STEPS = (  # the states of a script's text; each pattern starts with a plain character
    re.compile(rf"<(?:(?P<end>/{_SCRIPT})|!--(?!-*>))", _FLAGS),  # plain: its end, or "<!--"
    re.compile(rf"-->|<(?:(?P<end>/{_SCRIPT})|(?P<nest>{_SCRIPT}))", _FLAGS),  # escaped
    re.compile(rf"-->|(?P<out></{_SCRIPT})", _FLAGS),  # a script nested in the escape
)
_LINKED_DATA = re.compile(r"ld\+json", _FLAGS)


def without_code(page: str) -> str:
    """`page` with the text of its `<script>` and `<style>` elements left out (not that of a
    JSON-LD script)."""
    # Past the last script or style sheet there is nothing to leave out (a later one whose name
    # mixes cases is then kept, which is never wrong).
    last = max(page.rfind(start) for start in ("<script", "<style", "<SCRIPT", "<STYLE"))
    kept: list[str] = []
    start = 0  # of what is not yet in `kept`
    at = 0  # where reading goes on
    while at <= last:
        found = _NEXT_SPECIAL.match(page, at)
        if found is None:
            break
        at = found.end()
        name = found["name"].lower()
        if found["empty"]:
            continue  # <script/>: an empty element, as parsers read it
        if name == "plaintext":
            break  # all the rest is text
        end = _script_end(page, at) if name == "script" else _text_end(name, page, at)
        if end is None:
            break  # it runs to the end of the page
        if name in _CODE_NAMES and end > at and not _LINKED_DATA.search(found["tag"]):
            kept.append(page[start:at])
            start = end
        at = end
    if not kept:
        return page
    kept.append(page[start:])
    return "".join(kept)


def _text_end(name: str, page: str, at: int) -> int | None:
    end = _END_TAGS[name].search(page, at)
    return None if end is None else end.start()


def _script_end(page: str, at: int) -> int | None:
    """Where the script whose text starts at `at` ends (its end tag), or None: at the page's end."""
    state = 0
    while True:
        step = _SCRIPT_STEPS[state].search(page, at)
        if step is None:
            return None
        if step.lastgroup == "end":
            return step.start()
        at = step.end()
        if state == 0:
            state = 1  # "<!--"
        elif state == 1:
            state = 2 if step.lastgroup == "nest" else 0
        else:
            state = 1 if step.lastgroup == "out" else 0
