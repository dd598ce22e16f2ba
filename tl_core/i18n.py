"""English and Korean for every sentence a user reads (gettext style, no streamlit).

The English text is the message id; ``locales/ko.json`` maps it to Korean. Templates use
``str.format`` fields, filled after the lookup, so both languages share the numbers::

    _("Done in {seconds:.0f} s: {score}.", seconds=12.3, score=...)

The app registers a resolver that answers with the browser session's choice (sidebar switch);
otherwise ``set_language`` (a context variable) decides, else ``TL_LANG`` (``en`` or ``ko``, which
the app passes to the training processes it starts), else a Korean ``LANG``.
``N_`` marks a text stored somewhere (a table of constants) and translated where it is shown.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

LANGUAGES = {"en": "English", "ko": "한국어"}
LOCALES = Path(__file__).with_name("locales")


def _from_env() -> str:
    lang = os.environ.get("TL_LANG", "").lower()
    if lang in LANGUAGES:
        return lang
    locale = os.environ.get("LC_ALL") or os.environ.get("LC_MESSAGES") or os.environ.get("LANG") or ""
    return "ko" if locale.lower().startswith("ko") else "en"


_current: contextvars.ContextVar[str] = contextvars.ContextVar("tl_language")
_resolver: Callable[[], str | None] | None = None


def language() -> str:
    """The resolver's answer (the app: this browser session's choice), else ``set_language``'s,
    else the environment's."""
    lang = _resolver() if _resolver else None
    return lang if lang in LANGUAGES else _current.get(None) or _from_env()


def set_resolver(resolver: Callable[[], str | None] | None) -> None:
    """Let a front end say which language the current thread serves (None: no opinion)."""
    global _resolver
    _resolver = resolver


def set_language(lang: str) -> None:
    """Use ``lang`` for the rest of this thread / context (unknown codes fall back to English)."""
    _current.set(lang if lang in LANGUAGES else "en")


@cache
def catalog(lang: str) -> dict[str, str]:
    """English message id -> translation (empty for English)."""
    path = LOCALES / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8")) if lang != "en" and path.is_file() else {}


def _(text: str, **fields) -> str:
    """``text`` in the current language, with ``fields`` filled in."""
    lang = language()
    out = catalog(lang).get(text, text)
    out = out.format(**fields) if fields else out
    return korean_particles(out) if lang == "ko" and fields else out


# Korean particles depend on the sound before them: 을/를, 이/가, 은/는, 과/와, (으)로. A catalog
# entry writes the pair after a {field} ("{label}을(를)"), and the filled-in word decides.
_PARTICLES = {"을(를)": ("을", "를"), "를(을)": ("을", "를"), "이(가)": ("이", "가"), "가(이)": ("이", "가"),
              "은(는)": ("은", "는"), "는(은)": ("은", "는"), "과(와)": ("과", "와"), "와(과)": ("과", "와"),
              "(으)로": ("으로", "로")}
_PARTICLE_RE = re.compile(r"([A-Za-z]+|[^\s'\"’”)\]])(['\"’”)\]]*)("
                          + "|".join(re.escape(k) for k in _PARTICLES) + ")")
# How a digit or a single Latin letter is read aloud: with a final consonant (영, 일, 삼, 육, 칠, 팔;
# 엘, 엠, 엔, 알), and which of those end in ㄹ (which takes 로, not 으로).
_CODA, _RIEUL = set("013678lmnr"), set("178lr")


def _final(word: str) -> str:
    """"none", "rieul" or "other": the final consonant of ``word`` as read in Korean."""
    ch = word[-1]
    if "가" <= ch <= "힣":
        coda = (ord(ch) - 0xAC00) % 28
        return "none" if coda == 0 else "rieul" if coda == 8 else "other"
    if len(word) > 1 and word.isalpha():  # an English word as Korean says it: ball 볼, cat 캣, dog 도그
        w = word.lower()
        return ("rieul" if w.endswith("l") else "other" if w.endswith(("m", "n", "ng", "p", "t", "k")) else "none")
    ch = ch.lower()
    return "rieul" if ch in _RIEUL else "other" if ch in _CODA else "none"


def korean_particles(text: str) -> str:
    """Resolve every particle pair in ``text`` by the word before it ("'8'을(를)" -> "'8'을")."""
    def pick(m: re.Match) -> str:
        with_coda, without = _PARTICLES[m.group(3)]
        final = _final(m.group(1))
        chosen = without if final == "none" or (final == "rieul" and m.group(3) == "(으)로") else with_coda
        return m.group(1) + m.group(2) + chosen

    return _PARTICLE_RE.sub(pick, text)


def ngettext(singular: str, plural: str, n: int, **fields) -> str:
    """English picks the form by ``n``; Korean has one form, stored under the plural id."""
    if language() == "en":
        return (singular if n == 1 else plural).format(n=n, **fields)
    return catalog(language()).get(plural, plural).format(n=n, **fields)


def N_(text: str) -> str:
    """Mark ``text`` for the catalog without translating it here (constants translated when shown)."""
    return text


def extract(paths: list[str | Path]) -> dict[str, list[str]]:
    """Every message id in the given Python files (``_``/``N_`` literals, ``ngettext``'s plural
    form) -> where it is used ("file:line"). Used by the tests and ``python -m tl_core.i18n``."""
    import ast

    found: dict[str, list[str]] = {}
    for path in paths:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            index = {"_": 0, "N_": 0, "ngettext": 1}.get(node.func.id)
            if index is None or len(node.args) <= index:
                continue
            arg = node.args[index]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.setdefault(arg.value, []).append(f"{path}:{node.lineno}")
    return found


def source_files(root: str | Path) -> list[Path]:
    """The project's files that hold user-facing text: app.py, pages/, ui/, tl_core/."""
    root = Path(root)
    return sorted([root / "app.py", *root.glob("pages/*.py"), *root.glob("ui/*.py"), *root.glob("tl_core/*.py")])


if __name__ == "__main__":  # python -m tl_core.i18n [LANG]: the ids LANG's catalog lacks, as JSON to fill in
    import sys

    lang = sys.argv[1] if len(sys.argv) > 1 else "ko"
    ids = extract(source_files(Path(__file__).resolve().parents[1]))
    print(json.dumps({k: "" for k in ids if k not in catalog(lang)}, ensure_ascii=False, indent=1))
