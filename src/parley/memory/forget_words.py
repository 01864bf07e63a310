"""Recognising "forget ..." in the user's own words, without a model.

"Can you forget everything about my old job?", "delete the memory about my
ankle", "please stop remembering that I'm vegetarian", "I'd rather you didn't
remember my ex", "wipe what you know about my debts": ``parse_forget`` finds the
request and the words naming what to forget (``ForgetAsk.phrase``), so forgetting
works with any chat model, the tiny embedded one included. It is deliberately
generous with "forget" and strict with "delete", "remove", "clear" (they need a
memory cue: "from your memory", "what you know", "about me", a possessive
fact): nothing is deleted on recognition alone, the user approves the matched
memories in a chip first, so a false positive costs one dismissed chip.

Not requests: "I forgot my keys", "don't forget ...", "how do I delete a git
branch?", "forget it", "delete my last message", "do you forget things?".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parley.memory.text import clean_fact, content_words, fold

__all__ = ["ForgetAsk", "parse_forget"]

_OPENERS = re.compile(
    r"^(?:(?:hey|hi|ok|okay|so|um|uh|alright|right|actually|also|and|oh|well|one more thing|"
    r"btw|by the way|parley|listen)[\s,!.:-]+)*"
)
_WRAPPERS = re.compile(
    r"^(?:(?:please|pls|plz|kindly|just|now)[\s,]+|"
    r"(?:can|could|would|will) you[\s,]+(?:please[\s,]+)?|"
    r"(?:i want|i'd like|i would like|i need|i'd love) (?:for )?you to[\s,]+|"
    r"(?:is it possible|are you able|would it be possible) (?:for you )?to[\s,]+|"
    r"(?:would|do) you mind[\s,]+|make sure (?:that )?you[\s,]+|i'm asking you to[\s,]+|"
    r"go ahead and[\s,]+|time to[\s,]+)*"
)
# The forgetting verb, and whether it needs a memory cue (delete/remove/clear...).
_STRONG = (
    r"forget(?:ting)?|stop remembering|stop storing|stop saving|stop keeping track of|"
    r"stop keeping|no longer remember|unlearn|unremember|let go of"
)
_WEAK = (
    r"delete|deleting|remove|removing|erase|erasing|wipe|wiping|clear|clearing|drop|dropping|"
    r"purge|purging|scrub|scrubbing|scrap|discard|discarding|get rid of|getting rid of|"
    r"throw out|throw away|toss"
)
_VERB = re.compile(rf"^(?P<verb>{_STRONG}|{_WEAK})\b[\s,:]*(?P<rest>.*)$", re.DOTALL)
# "I don't want you to remember ...", "you don't need to remember ...".
_NEGATED = re.compile(
    r"^(?:i (?:don't|do not) want you to (?:remember|know|keep)|i'd rather you (?:didn't|did not) "
    r"(?:remember|know|keep)|"
    r"you (?:don't|do not|no longer) (?:need|have) to (?:remember|know|keep)|"
    r"(?:don't|do not) (?:remember|keep|store|save)|no need to (?:remember|keep)|"
    r"there's no need to (?:remember|keep)|you can (?:forget|stop remembering)|"
    r"you should (?:forget|stop remembering))\b[\s,:]*(?P<rest>.*)$",
    re.DOTALL,
)
_OBJECT_LEAD = re.compile(
    r"^(?:(?:about|out|off|all|any|every|of|on|regarding|concerning|the|that|this|those|"
    r"these|what|whatever|everything|anything|all of|any of|all the|any mention of|mention of|"
    r"mentions of|stuff|things|thing|info|information|details|detail|memory|memories|"
    r"memory of|note|notes|fact|facts|the fact that|part|bit|entry|entries|record|"
    r"related to|to do with|you know|you've got|you have|you've|you keep|you saved|"
    r"you've saved|you stored|you've stored|you remember|you learned|you've learned|"
    r"you noted|you wrote down|you have saved|you have stored|i told you|i've told you|i said|"
    r"i mentioned|i've mentioned|i shared|i've shared|saved|stored|remembered|kept)"
    r"[\s,]+)*"
)
_TRAILERS = re.compile(
    r"(?:[\s,]+(?:from|in|out of|off) (?:your |the )?(?:memory|memories|notes|records|"
    r"saved memories|list)|[\s,]+(?:please|pls|for me|now|anymore|any more|as well|too|"
    r"for good|completely|entirely|thanks|thank you|ok|okay)|[\s?!.]+)+$"
)
_MEMORY_CUE = re.compile(
    r"\b(?:memory|memories|you know|you remember|you saved|you've saved|you stored|"
    r"you've stored|you've got|you have on|told you|i said|i mentioned|about me|you learned|"
    r"note|notes|the fact|fact that|info about|stuff about|everything about|anything about|"
    r"all about|details about|what you)\b"
)
_NOT_MEMORY = re.compile(
    r"^(?:(?:my|the|this|that|these|those|your|a|an|all|last|first|second|third|previous|"
    r"above|old|earlier|new|two|three|extra|duplicate|empty|\d+)\s+)*"
    r"(?:files?|folders?|lines?|columns?|rows?|branch(?:es)?|commits?|tables?|database|"
    r"records? from|keys?|accounts?|messages?|chats?|conversations?|history|photos?|pictures?|"
    r"emails?|apps?|cache|cookies|duplicates|words?|paragraphs?|sentences?|commas?|code|"
    r"functions?|variables?|repos?|repository|containers?|images?|tabs?|items?|lists?|"
    r"nodes?|comments?|stains?|answers?|questions?|instructions?|prompt|requests?|"
    r"formatting|tone|spaces|whitespace|blank|it|that|this|everything i said|what i said|"
    r"what i just said|the above)\b"
)
_QUESTION_NOT_ASK = re.compile(
    r"^(?:do|does|did|why|how|when|what|which|where|who|have|has|is it true|will you ever|"
    r"would you ever|can you ever|are you able to ever)\b"
)
_CONVERSATIONAL = re.compile(
    r"^(?:it|that|this|about it|about that|about this|all that|all of that|it all|"
    r"everything|everything i said|what i just said|what i said|the last|the previous|"
    r"my last|your last|the above|the rest)$"
)
_TOPIC = re.compile(
    r"\b(?:everything|anything|all|stuff|things|whatever|info|information|details|"
    r"memories)\b"
)


@dataclass(slots=True, frozen=True)
class ForgetAsk:
    """A request to forget: ``phrase`` names what ("my old job"); ``topic`` when
    it asks for everything about something (may match several memories)."""

    phrase: str
    topic: bool


def _first_sentence(message: str) -> str:
    text = " ".join(message.strip().splitlines()[0].split()) if message.strip() else ""
    return fold(text).replace("’", "'")


def parse_forget(message: str) -> ForgetAsk | None:
    """The request to forget in ``message``, or None (see the module docstring)."""
    text = _first_sentence(message)
    if not text or len(text) > 400:
        return None
    text = _OPENERS.sub("", text)
    if _QUESTION_NOT_ASK.match(text):
        return None
    stripped = _WRAPPERS.sub("", text)
    negated = _NEGATED.match(stripped)
    if negated is not None:
        rest, weak = negated.group("rest"), False
    else:
        found = _VERB.match(stripped)
        if found is None:
            return None
        rest = found.group("rest")
        weak = re.fullmatch(_WEAK, found.group("verb")) is not None
    rest = re.split(r"[;]|,\s*(?:and |but |then |so )?(?:let's|just|now|instead|and then)\b", rest)[
        0
    ]
    if weak and not (_MEMORY_CUE.search(rest) or _possessive_fact(rest)):
        return None
    phrase = _TRAILERS.sub("", rest).strip(" ,.?!")
    topic = bool(_TOPIC.search(phrase))
    phrase = _OBJECT_LEAD.sub("", phrase).strip(" ,.?!")
    if not phrase or _CONVERSATIONAL.match(phrase) or _NOT_MEMORY.match(phrase):
        return None
    if not content_words(phrase):
        return None
    return ForgetAsk(clean_fact(phrase), topic or _topic_like(phrase))


def _possessive_fact(rest: str) -> bool:
    """'delete my debts', 'remove that I'm vegetarian': about the user, not a thing on screen."""
    body = _OBJECT_LEAD.sub("", rest.strip())
    return bool(re.match(r"^(?:my|i|i'm|i've|i am|that i|where i|who i|what i)\b", body)) and not (
        _NOT_MEMORY.match(body)
    )


def _topic_like(phrase: str) -> bool:
    """A bare noun phrase ("my debts", "my ex") names a topic, not one fact."""
    words = phrase.split()
    return len(words) <= 4 and not re.search(r"\b(?:i|i'm|am|is|are|was|have|has)\b", phrase)
