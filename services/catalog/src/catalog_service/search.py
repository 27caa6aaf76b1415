"""Text search without a text index.

The MongoDB-wire server of the local stack (FerretDB 1.x) has no `$text` indexes, no collation
and no `$size`/`$filter`/`$first` in aggregations, so search works on a normalised token array
stored in each product: lower-cased, accent-free words of its name, description, sku,
attributes and category names, plus their prefixes (from 3 letters), so "cam" finds "camiseta".
A query matches products containing every query term (`$all`); relevance is then scored from
where the terms hit (whole word of the name > prefix of a name word > elsewhere).

Words are cut at `MAX_WORD` characters and prefixes stop at `MAX_PREFIX`, so a 5000-character
"word" cannot blow the document up. The term array carries no index: FerretDB 1.x indexes an
array as one PostgreSQL key (rows over the btree limit are refused) and cannot use such an
index for `$all` anyway.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+")
MIN_PREFIX = 3
MAX_PREFIX = 15
MAX_WORD = 30
MAX_TERMS = 8
MAX_SLUG = 120

STOPWORDS = frozenset(
    [
        "a",
        "o",
        "e",
        "de",
        "da",
        "do",
        "das",
        "dos",
        "em",
        "no",
        "na",
        "nos",
        "nas",
        "um",
        "uma",
        "para",
        "com",
        "por",
        "the",
        "and",
        "of",
        "for",
        "with",
        "in",
        "on",
    ]
)


def normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """Normalised words of a text, stopwords and one-letter words removed, in order."""
    return [
        w[:MAX_WORD] for w in _WORD.findall(normalise(text)) if len(w) > 1 and w not in STOPWORDS
    ]


def slug(text: str) -> str:
    """URL slug of a text: its normalised words (stopwords kept) joined by hyphens."""
    return "-".join(_WORD.findall(normalise(text)))[:MAX_SLUG].strip("-")


def terms(texts: Iterable[str]) -> list[str]:
    """The searchable terms of a document: its words and their prefixes, sorted, unique."""
    found: set[str] = set()
    for text in texts:
        for word in words(text):
            found.add(word)
            found.update(word[:n] for n in range(MIN_PREFIX, min(len(word), MAX_PREFIX + 1)))
    return sorted(found)


def query_terms(q: str) -> list[str]:
    """The distinct terms of a query (at most `MAX_TERMS`, in order of appearance)."""
    return list(dict.fromkeys(words(q)))[:MAX_TERMS]


def score(name_words: list[str], wanted: list[str], phrase: str) -> int:
    """Relevance of a product already known to contain every wanted term."""
    total = 0
    for term in wanted:
        if term in name_words:
            total += 3
        elif any(word.startswith(term) for word in name_words):
            total += 2
        else:
            total += 1
    if len(wanted) > 1 and phrase and phrase in " ".join(name_words):
        total += 2
    return total
