"""Wording of the dashboards and the report, French by default, English on request.

Every user-visible string lives in one gettext message catalogue per language,
``ecodemo/locale/<lang>/LC_MESSAGES/ecodemo.po``, keyed by a message id (``territory.title``)
and read with Babel, so translators use the ordinary .po tools and a build in one language is
complete. SQL column aliases that become series names are translated here too: the panel
overrides match on those names.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

from babel.messages.pofile import read_po

Lang = Literal["fr", "en"]
LANGS: tuple[Lang, ...] = ("fr", "en")
DOMAIN = "ecodemo"


@cache
def _catalogue(lang: Lang) -> dict[str, str]:
    path = resources.files("ecodemo") / "locale" / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as f:
        cat = read_po(f, locale=lang, domain=DOMAIN)
    return {str(m.id): str(m.string) for m in cat if m.id and isinstance(m.id, str)}


def labels(lang: Lang) -> dict[str, str]:
    """All strings in one language (message id -> text)."""
    if lang not in LANGS:
        raise ValueError(f"unknown language '{lang}' (expected one of {', '.join(LANGS)})")
    return dict(_catalogue(lang))
