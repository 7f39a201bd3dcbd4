"""The colour names a caller may give for a product (`colour` of /v1/select), reduced to basic colour terms.

Pictures are named with the eleven basic colour terms of Berlin and Kay (preprocessing.colour.colour_name_shares
gives each term's share of a picture's foreground); a catalog's own colour names ("navy", "Space Gray",
"black/white") map onto them word by word here. One copy of the vocabulary, read by the gateway (the request) and
the evaluations (the development catalog's colour column).
"""

from __future__ import annotations

import re

# The order of colour_name_shares' output.
BASIC_COLOURS = ("black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown")

# Catalog words for a shade -> the basic terms a shopper would call it (a few straddle two: teal, khaki, indigo).
_SHADES: dict[str, tuple[str, ...]] = {
    "grey": ("gray",),
    "charcoal": ("gray", "black"),
    "graphite": ("gray",),
    "slate": ("gray",),
    "silver": ("gray", "white"),
    "spacegray": ("gray",),
    "spacegrey": ("gray",),
    "ash": ("gray",),
    "heather": ("gray",),
    "pewter": ("gray",),
    "gunmetal": ("gray",),
    "jet": ("black",),
    "onyx": ("black",),
    "ebony": ("black",),
    "ivory": ("white",),
    "cream": ("white",),
    "snow": ("white",),
    "pearl": ("white",),
    "maroon": ("red",),
    "burgundy": ("red",),
    "wine": ("red",),
    "crimson": ("red",),
    "scarlet": ("red",),
    "cherry": ("red",),
    "ruby": ("red",),
    "rust": ("orange", "brown"),
    "coral": ("orange", "pink"),
    "peach": ("orange", "pink"),
    "apricot": ("orange",),
    "tangerine": ("orange",),
    "amber": ("orange", "yellow"),
    "gold": ("yellow",),
    "golden": ("yellow",),
    "mustard": ("yellow",),
    "lemon": ("yellow",),
    "olive": ("green",),
    "mint": ("green",),
    "sage": ("green",),
    "emerald": ("green",),
    "lime": ("green",),
    "khaki": ("green", "brown"),
    "teal": ("green", "blue"),
    "turquoise": ("blue", "green"),
    "aqua": ("blue", "green"),
    "cyan": ("blue",),
    "navy": ("blue",),
    "cobalt": ("blue",),
    "denim": ("blue",),
    "azure": ("blue",),
    "indigo": ("blue", "purple"),
    "violet": ("purple",),
    "lavender": ("purple",),
    "lilac": ("purple",),
    "plum": ("purple",),
    "mauve": ("purple", "pink"),
    "magenta": ("purple", "pink"),
    "fuchsia": ("pink",),
    "rose": ("pink",),
    "blush": ("pink",),
    "salmon": ("pink", "orange"),
    "tan": ("brown",),
    "beige": ("brown", "white"),
    "camel": ("brown",),
    "chocolate": ("brown",),
    "coffee": ("brown",),
    "taupe": ("brown", "gray"),
    "bronze": ("brown",),
    "cognac": ("brown",),
    "havana": ("brown",),
    "tortoise": ("brown",),
    "mocha": ("brown",),
    "sand": ("brown", "white"),
}
COLOUR_WORDS: dict[str, tuple[str, ...]] = {**{term: (term,) for term in BASIC_COLOURS}, **_SHADES}

MAX_COLOUR_NAME = 64  # characters of the request's `colour`


def colour_terms(name: str) -> frozenset[str]:
    """The basic terms a colour name stands for, word by word ("Navy/White" -> blue, white; "space gray" -> gray);
    words outside the vocabulary (a brand's "Midnight", "classic", "multi") add nothing, so an empty set means the
    name was not understood."""
    words = re.findall(r"[a-z]+", name.lower())
    joined = "".join(words)  # "space gray" and "spacegray" alike
    found = [COLOUR_WORDS[w] for w in (*words, joined) if w in COLOUR_WORDS]
    return frozenset(term for terms in found for term in terms)
