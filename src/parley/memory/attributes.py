"""Attribute keys: which single-valued attribute of which person a fact states.

An update must never destroy an unrelated fact: "We moved to Lyon after my knee
surgery" replaces where the user lives, not the memory about the knee. So every
fact gets a key computed here, deterministically and without a model:
``"home.city"``, ``"job.employer"``, ``"sister:home.city"`` (the subject before
the colon when it is not the user), or ``None`` for facts that are not one value
of a single-valued attribute (hobbies, injuries, events, likes: those are added
beside each other).

The key is found only where the subject starts a clause ("I live in...",
"..., and we moved to...", "Lives in Paris." as a memory is written), never in a
subordinate clause ("my knee hurts since I moved to Lyon" is about the knee), so a
fact that merely mentions a move does not claim the "home" attribute.

``MemoryService`` replaces a memory only when both keys are equal and the texts
differ; when the chat model says "update" but the keys do not agree, the change
becomes a proposal the user confirms (or an addition, when both have different keys).
"""

from __future__ import annotations

import re

from parley.memory.text import fold

__all__ = ["ATTRIBUTES", "attribute_key"]

# Who the fact is about, when it is not the user ("my sister ...").
_RELATIVES = (
    "sister|brother|mother|mom|mum|father|dad|wife|husband|partner|girlfriend|boyfriend|"
    "son|daughter|boss|roommate|flatmate|grandmother|grandma|grandfather|grandpa|aunt|uncle|"
    "cousin|niece|nephew|fiance|fiancee|spouse"
)
_SELF_SUBJECT = (
    r"(?:i|we|i'm|i am|we're|we are|i've|we've|i have|we have|i'll|we'll|i'd|"
    r"the user|user|my family|my partner and i|my wife and i|my husband and i|and)"
)
_ADVERBS = (
    r"(?:(?:now|just|recently|actually|currently|finally|also|still|already|officially|"
    r"no longer|since|then|got|have|has|had|am|is|are|was|been|'ve|'m|'s|do|don't|do not|"
    r"did|didn't|never|mostly|usually|happily|newly|eventually|soon|will|gonna|going to|"
    r"decided to|started|stopped|went|became|become|gone|going|turned)\s+)*"
)
_CLAUSE = r"(?:^|[.;:!?]\s*|,\s*(?:and\s+|but\s+|so\s+)?|\b(?:and|but|so|now|anyway)\s+)"
_ROLES = (
    "engineer|developer|teacher|nurse|doctor|designer|manager|lawyer|accountant|chef|"
    "student|writer|programmer|scientist|consultant|architect|pharmacist|electrician|"
    "plumber|analyst|researcher|professor|librarian|firefighter|officer|pilot|barista|"
    "mechanic|carpenter|translator|journalist|photographer|retired|retiree|freelancer|"
    "paramedic|veterinarian|vet|dentist|surgeon|therapist|cook|baker|driver|lecturer|"
    "intern|tutor|editor|cto|ceo|founder|director|administrator|technician|sales"
)

# (attribute, verb phrase after the subject). The first clause-initial match wins.
ATTRIBUTES: list[tuple[str, str]] = [
    ("name", r"(?:name is|'s name is|go by|am called)\b"),
    (
        "home.city",
        r"(?:live|lives|living|lived|moved|move|moving|relocated|relocating|based|reside|"
        r"resides|residing|settled|settling)\s+(?:back\s+)?(?:in|to|near|at|out to|over to)\b",
    ),
    ("home.city", r"(?:home|house|flat|apartment|place|address) is (?:now )?(?:in|at|on)\b"),
    (
        "job.employer",
        r"(?:work|works|working|worked)\s+(?:full[- ]time\s+|part[- ]time\s+|remotely\s+)?"
        r"(?:at|for|in)\b|(?:joined|join|joining|employed by|employed at|hired by|hired at|"
        r"started at|start at|starting at|quit|left|leaving)\s+(?!(?:the|a|an)\s+"
        r"(?:gym|club|choir|team|band|league|class)\b)\w|(?:new |current )?(?:job|employer) "
        r"is (?:at|with|for)?\b",
    ),
    (
        "job.role",
        rf"(?:work|works|working)\s+as\b|(?:a|an)\s+(?:\w+\s+)?(?:{_ROLES})\b|"
        r"(?:got )?promoted to\b|(?:job|role|title|position) is\b",
    ),
    (
        "diet",
        r"(?:a |on a |strictly |fully )?(?:vegetarian|vegan|pescatarian|keto|paleo|"
        r"plant[- ]based|carnivore|gluten[- ]free)\b|eat(?:ing)? (?:meat|fish|dairy)|"
        r"(?:eat|eating|ate) (?:everything|anything)\b",
    ),
    (
        "partner",
        r"(?:married|engaged|divorced|single|dating|seeing someone|separated|widowed)\b|"
        r"(?:broke|split) up\b",
    ),
    (
        "age",
        r"(?:turned|turning|turn) \d{1,3}\b|(?:aged? )?\d{1,3}(?: years old| now|\.|$|,| yo\b)",
    ),
    ("car", r"(?:drive|drives|driving)\s+(?:a|an)\b|(?:car|vehicle) is\b|bought a (?:new )?car"),
    ("phone", r"(?:phone is|use an? (?:iphone|android|pixel|samsung))"),
    ("units", r"(?:prefer|use|uses|like)\s+(?:the )?(?:metric|imperial|celsius|fahrenheit)\b"),
    (
        "commute",
        r"(?:commute|commutes|get to work|go to work|cycle to work|bike to work|ride to work|"
        r"drive to work|walk to work|take the (?:bus|train|metro|tube|subway|tram) to work)\b",
    ),
    ("education", r"(?:study|studies|studying|enrolled)\s+(?:\w+\s+)?(?:at|in)\b"),
    ("routine.wake", r"(?:wake up|get up|wakes up|gets up)\s+at\b"),
    ("routine.bed", r"(?:go to bed|goes to bed|go to sleep|bedtime is)\s+(?:at|around)?\b"),
    ("gym", r"gym is\b"),
    ("timezone", r"time ?zone is\b"),
]
_FAVOURITE = re.compile(r"\bfavou?rite (\w+)(?: \w+)? (?:is|are|has become|now)\b")
_LEAD = (
    r"(?:(?:actually|so|well|oh|also|btw|by the way|anyway|these days|nowadays|now|update|"
    r"fyi|just so you know|quick update|as of (?:this|last) \w+)[,:]?\s+)*"
)
# A clause whose subject follows one of these is subordinate: not what the fact states.
_SUBORDINATORS = frozenset(
    [
        "since",
        "after",
        "when",
        "because",
        "before",
        "until",
        "while",
        "if",
        "that",
        "who",
        "which",
        "whenever",
        "once",
        "though",
        "although",
        "where",
        "as",
    ]
)
_SUBJECT_FIRST = [
    (name, re.compile(rf"\b{_SELF_SUBJECT}\s+{_ADVERBS}(?:{phrase})", re.IGNORECASE))
    for name, phrase in ATTRIBUTES
]
_NO_SUBJECT = [
    (name, re.compile(rf"^{_LEAD}{_ADVERBS}(?:{phrase})", re.IGNORECASE))
    for name, phrase in ATTRIBUTES
]
_RELATIVE = re.compile(rf"\b(?:my|the user's|user's|his|her|their) ({_RELATIVES})(?:'s)?\b\s*")
_OF_RELATIVE = [
    (name, re.compile(rf"^{_ADVERBS}(?:{phrase})", re.IGNORECASE)) for name, phrase in ATTRIBUTES
]
_PARTNER_NAMED = re.compile(
    r"(?:^|\b(?:my|user's)\s+)(?:girlfriend|boyfriend|partner|wife|husband|fiancee?|spouse)"
    r"(?:'s name)?\s+(?:is|named|called)\b"
)


def _fold(text: str) -> str:
    return " ".join(fold(text).replace("’", "'").split())


def attribute_key(text: str) -> str | None:
    """The attribute key of a fact, or None (see the module docstring)."""
    folded = _fold(text)
    if not folded:
        return None
    favourite = _FAVOURITE.search(folded)
    if favourite:
        return f"favourite.{favourite.group(1).rstrip('s')}"
    if _PARTNER_NAMED.search(folded):
        return "partner"
    found: list[tuple[int, str]] = []
    for match in _RELATIVE.finditer(folded):
        if _subordinate(folded, match.start()):
            continue
        rest = folded[match.end() :]
        named = rest.split(" ", 1)[1] if " " in rest else ""  # "my sister Ana lives ..."
        for name, pattern in _OF_RELATIVE:
            if name in ("name", "age") and not rest.startswith(("is ", "turned")):
                continue
            if pattern.match(rest) or (named and pattern.match(named)):
                found.append((match.start(), f"{match.group(1)}:{name}"))
                break
    for name, pattern in _NO_SUBJECT:
        if pattern.match(folded):
            found.append((0, name))
    for name, pattern in _SUBJECT_FIRST:
        for match in pattern.finditer(folded):
            if not _subordinate(folded, match.start()):
                found.append((match.start(), name))
                break
    return min(found)[1] if found else None


def _subordinate(folded: str, start: int) -> bool:
    """The word before ``start`` opens a subordinate clause ("since I moved to ...")."""
    before = re.findall(r"[\w']+", folded[:start][-30:])
    return bool(before) and before[-1] in _SUBORDINATORS
