"""Closed word lists that give prompt words a slot kind and say what an edit may swap in.

Words in one group are near-synonyms: an edit always swaps a word for one from another
group, so "grey" never becomes "gray" and "wooden" never becomes "wood".
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import inflect

COLOUR_GROUPS: tuple[tuple[str, ...], ...] = (
    ("red", "crimson", "scarlet"),
    ("orange",),
    ("yellow", "golden"),
    ("green", "emerald"),
    ("blue", "navy", "azure"),
    ("teal", "turquoise"),
    ("purple", "violet", "lavender"),
    ("pink", "magenta"),
    ("brown", "chocolate"),
    ("black",),
    ("white", "ivory"),
    ("grey", "gray", "silver"),
    ("beige", "tan"),
)
MATERIAL_GROUPS: tuple[tuple[str, ...], ...] = (
    ("wooden", "wood", "oak"),
    ("metal", "metallic", "steel", "iron"),
    ("glass",),
    ("ceramic", "porcelain", "clay"),
    ("plastic",),
    ("leather",),
    ("stone", "marble", "granite"),
    ("brick",),
    ("paper", "cardboard"),
    ("woollen", "wool", "knitted"),
    ("silk", "velvet", "cotton", "linen"),
    ("copper", "bronze", "brass"),
    ("gold",),
    ("wicker", "bamboo", "straw"),
    ("concrete",),
    ("rubber",),
    ("crystal",),
)
SIZE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("tiny", "small", "little", "miniature"),
    ("large", "big", "huge", "giant", "enormous", "massive", "tall"),
)

# Spatial predicates; each maps to predicates that contradict it.
RELATION_CONTRASTS: dict[str, tuple[str, ...]] = {
    "on top of": ("under", "beside"),
    "on": ("under", "beside"),
    "under": ("on top of", "above"),
    "underneath": ("on top of", "above"),
    "beneath": ("on top of", "above"),
    "below": ("above", "on top of"),
    "above": ("below", "under"),
    "next to": ("far from", "on top of"),
    "beside": ("on top of", "far from"),
    "near": ("far from",),
    "far from": ("next to",),
    "behind": ("in front of",),
    "in front of": ("behind",),
    "to the left of": ("to the right of",),
    "to the right of": ("to the left of",),
    "inside": ("outside", "on top of"),
    "in": ("outside", "next to"),
    "outside": ("inside",),
    "across from": ("next to",),
    "between": ("far from",),
    "around": ("inside",),
    "over": ("under", "below"),
    "across": ("along", "beside"),
    "along": ("across", "far from"),
    "against": ("far from", "on top of"),
    "through": ("around", "above"),
    "into": ("out of", "away from"),
    "out of": ("into",),
    "past": ("toward",),
    "toward": ("away from",),
    "away from": ("toward",),
    "up": ("down",),
    "down": ("up",),
    "from": ("toward",),
    "at": ("far from",),
    "on either side of": ("on top of",),
    "at the end of": ("at the start of",),
    "at the start of": ("at the end of",),
    "at the bottom of": ("at the top of",),
    "at the top of": ("at the bottom of",),
}

OBJECT_GROUPS: dict[str, tuple[str, ...]] = {
    "animal": (
        "cat",
        "dog",
        "horse",
        "rabbit",
        "fox",
        "owl",
        "parrot",
        "elephant",
        "deer",
        "bear",
        "cow",
        "sheep",
        "duck",
        "goat",
        "squirrel",
        "tiger",
        "giraffe",
        "frog",
    ),
    "vehicle": (
        "car",
        "bus",
        "bicycle",
        "motorcycle",
        "truck",
        "boat",
        "train",
        "tram",
        "scooter",
        "van",
        "taxi",
        "tractor",
        "canoe",
        "airplane",
    ),
    "furniture": (
        "chair",
        "table",
        "sofa",
        "bed",
        "lamp",
        "shelf",
        "desk",
        "bench",
        "armchair",
        "stool",
        "wardrobe",
        "cabinet",
    ),
    "tableware": (
        "mug",
        "cup",
        "bowl",
        "plate",
        "vase",
        "teapot",
        "bottle",
        "jar",
        "spoon",
        "fork",
        "glass",
        "kettle",
        "pan",
        "basket",
    ),
    "food": (
        "apple",
        "banana",
        "orange",
        "cake",
        "pizza",
        "sandwich",
        "croissant",
        "lemon",
        "tomato",
        "pear",
        "carrot",
        "donut",
        "pie",
        "cookie",
        "egg",
        "strawberry",
    ),
    "instrument": (
        "guitar",
        "violin",
        "piano",
        "drum",
        "trumpet",
        "cello",
        "flute",
        "saxophone",
        "harp",
        "accordion",
    ),
    "building": (
        "house",
        "tower",
        "church",
        "castle",
        "barn",
        "lighthouse",
        "bridge",
        "skyscraper",
        "cabin",
        "windmill",
        "temple",
        "cottage",
    ),
    "plant": (
        "tree",
        "flower",
        "cactus",
        "rose",
        "sunflower",
        "tulip",
        "fern",
        "oak",
        "palm",
        "mushroom",
        "bush",
    ),
    "person": (
        "man",
        "woman",
        "child",
        "girl",
        "boy",
        "chef",
        "dancer",
        "musician",
        "farmer",
        "soldier",
        "astronaut",
        "knight",
        "doctor",
        "teacher",
        "cyclist",
    ),
    "object": (
        "book",
        "clock",
        "umbrella",
        "backpack",
        "hat",
        "candle",
        "key",
        "ball",
        "kite",
        "suitcase",
        "camera",
        "phone",
        "laptop",
        "balloon",
        "lantern",
        "shoe",
        "mirror",
        "telescope",
    ),
}

COUNT_WORDS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a pair of": 2,
    "a couple of": 2,
    "several": 3,
    "a few": 3,
}

STYLE_WORDS: tuple[str, ...] = (
    "oil painting",
    "watercolor painting",
    "watercolour painting",
    "watercolor",
    "watercolour",
    "pencil sketch",
    "pencil drawing",
    "charcoal drawing",
    "ink drawing",
    "sketch",
    "digital art",
    "concept art",
    "pixel art",
    "vector art",
    "3d render",
    "low poly",
    "photograph",
    "photo",
    "studio photo",
    "film photo",
    "polaroid",
    "macro photo",
    "anime",
    "cartoon",
    "comic book",
    "ukiyo-e",
    "art nouveau",
    "impressionist painting",
    "cinematic",
    "isometric",
    "claymation",
    "stained glass",
    "mosaic",
    "woodcut",
)

_inflect = inflect.engine()


def _index(groups: Iterable[tuple[str, ...]]) -> dict[str, int]:
    return {word: i for i, group in enumerate(groups) for word in group}


COLOUR_GROUP = _index(COLOUR_GROUPS)
MATERIAL_GROUP = _index(MATERIAL_GROUPS)
SIZE_GROUP = _index(SIZE_GROUPS)
OBJECT_GROUP = {noun: group for group, nouns in OBJECT_GROUPS.items() for noun in nouns}

ATTRIBUTE_GROUPS = {"colour": COLOUR_GROUPS, "material": MATERIAL_GROUPS, "size": SIZE_GROUPS}
ATTRIBUTE_INDEX = {"colour": COLOUR_GROUP, "material": MATERIAL_GROUP, "size": SIZE_GROUP}


def attribute_kind(word: str) -> str | None:
    """'colour', 'material' or 'size' for a word of those lists, else None."""
    word = word.lower()
    for kind, index in ATTRIBUTE_INDEX.items():
        if word in index:
            return kind
    return None


def count_of(words: str) -> int | None:
    """The number a determiner or numeral stands for ('an' -> 1, 'three' -> 3, '7' -> 7)."""
    words = words.lower()
    if words.isdigit():
        return int(words)
    return COUNT_WORDS.get(words)


@lru_cache(maxsize=65536)
def singular(noun: str) -> str:
    """The singular form of a (possibly plural) noun; multi-word nouns inflect their head."""
    *head, last = noun.split(" ")
    form = _inflect.singular_noun(last)
    return " ".join([*head, form if isinstance(form, str) else last])


@lru_cache(maxsize=65536)
def plural(noun: str) -> str:
    *head, last = noun.split(" ")
    return " ".join([*head, _inflect.plural_noun(singular(last))])


def is_plural(noun: str) -> bool:
    return singular(noun) != noun


def count_phrase(count: int, following_word: str) -> str:
    """How a count is written before a noun phrase: 'a', 'an', 'two', ..."""
    if count == 1:
        return _inflect.a(following_word).split(" ", 1)[0]
    return _inflect.number_to_words(count)
