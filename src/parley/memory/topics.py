"""Topics of memories and questions, and which memories describe the person.

Recall must connect a question to a memory that shares no word with it ("what
should I cook tonight?" needs "Vegetarian."). The embedder alone scores such
pairs barely above unrelated ones, so two coarse signals help it:

- **Topics.** A small taxonomy (food, home, transport, work, family, pets,
  health, hobbies, money, travel, tech, how answers should look), each
  described in a sentence that is embedded with the same model as the
  memories. A memory's and a question's topic distributions are a softmax of
  their cosines to those descriptions; their dot product says "same topic".
  Four "general" topics (maths, code, facts about the world, language tasks)
  soak up questions that are not about the person: they agree with no
  memory, and a question mostly about them recalls only clear keyword matches.
- **Profile memories.** Facts that shape many answers (where the person
  lives, what they eat or must avoid, lasting health conditions, units,
  languages, how they want answers, who they live with) are recognised by
  patterns when the snapshot is built. They are not injected blindly: a
  profile memory gets a bonus in proportion to how much the question is about
  that memory's topic, so a cooking question lifts the diet facts and a
  weather question the home town.

The descriptions are about topics, not about any test question; changing them
changes every user's ranking, so measure with ``bench/memory_recall.py``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "BUNDLED",
    "GENERAL",
    "LINKS",
    "TOPICS",
    "bundled_vectors",
    "is_profile",
    "topic_weights",
]

TOPICS: dict[str, str] = {
    "food": "Food, cooking, meals, recipes, restaurants, diet, what someone eats or drinks.",
    "home": "Where someone lives: their city, town, neighbourhood, home, local weather.",
    "transport": "Getting around: commuting, driving a car, cycling, buses, trains, roads.",
    "work": "Job, career, workplace, colleagues, studies, teaching, professional projects.",
    "family": "Family and household: partner, spouse, children, parents, siblings, relatives.",
    "pets": "Pets and animals someone looks after: dogs, cats, birds.",
    "health": "Health: illnesses, medical conditions, medicines, injuries, pregnancy, allergies.",
    "hobbies": "Hobbies and leisure: sports, music, games, crafts, outdoor activities.",
    "money": "Money: savings, loans, mortgage, budget, bills, pension, investments.",
    "travel": "Travel: holidays, trips abroad, flights, visits to other places.",
    "tech": "Technology: computers, phones, software, programming, gadgets.",
    "style": "How answers should be given: language, units of measure, tone, length, format.",
    # Questions about the world rather than the person: they agree with no memory.
    "general:maths": "Arithmetic and maths: calculate numbers, percentages, squares, roots, "
    "formulas, unit conversions.",
    "general:code": "Programming: how to write code in Python, JavaScript or Rust, data "
    "structures, algorithms, strings and lists.",
    "general:facts": "Facts about the world: science, physics, chemistry, history, geography, "
    "capitals, famous people, who wrote or painted or composed something.",
    "general:words": "Language tasks: translate a phrase, define a word, write a poem, a joke "
    "or a story, explain a concept.",
}
GENERAL = [i for i, name in enumerate(TOPICS) if name.startswith("general")]
# Topics that answer questions of another: what someone can eat depends on their
# health (coeliac disease, diabetes, gout, allergies), so a food question lends half
# its weight to health memories. (question topic, memory topic, weight); chosen on
# the development split: recall@10 0.744 -> 0.767, two-needed 0.60 -> 0.69. Other
# pairs tried there (transport <- home, travel <- family, hobbies <- health) did
# not help.
LINKS: tuple[tuple[str, str, float], ...] = (("food", "health", 0.5),)
TEMPERATURE = 0.05  # softmax temperature over cosines to the topic descriptions

# What the fact is about comes first in a terse memory ("Lives in Ghent.", "I'm
# vegetarian.", "My wife is called Ana."), so the patterns are anchored there:
# "Prefers wooden toys for children." mentions children but is not about them.
_SUBJECT = r"^(?:i\s+|i'm\s+|i\s+am\s+|my\s+|is\s+|has\s+(?:a\s+|an\s+)?|am\s+)?"
_PROFILE = re.compile(
    _SUBJECT + r"(?:"
    # home
    r"lives?\b|living\b|moved\b|based in\b|"
    # diet and what must be avoided
    r"vegetarian|vegan|pescatarian|kosher|halal|jain\b|plant-based|low-carb|"
    r"(?:does not|doesn't|do not|don't|cannot|can't) (?:eat|drink)\b|avoids?\b|"
    r"allergic|(?:\w+ )?intoleran|coeliac|celiac|teetotal|drinks? no\b|keeps kosher|"
    # lasting health conditions
    r"type [12] diabet|diabet|asthma|pregnant|expecting|hypertension|high blood|"
    r"high cholesterol|arthritis|(?:\w+ ){0,2}(?:condition|disease|disorder|deficiency)\b|"
    # units, languages, answers
    r"(?:prefers |uses |thinks in )?(?:metric|imperial|celsius|fahrenheit|miles|kilo)|"
    r"speaks\b|(?:likes |wants |prefers )(?:\w+ )*?(?:answers|replies)\b|"
    # household
    r"married|widowed|divorced|single (?:mother|father|parent)|"
    r"(?:husband|wife|partner|spouse|girlfriend|boyfriend)\b|"
    r"(?:(?:two|three|four|five|\d+|no|twin) )?(?:daughters?|sons?|children|kids|toddlers|"
    r"grandchildren|baby)\b|"
    r"(?:mother|father|parents|mum|dad)\b"
    r")",
    re.IGNORECASE,
)


# The topic vectors of the default model, shipped so that no turn waits for
# them (regenerate with ``python scripts/topic_vectors.py`` after changing TOPICS;
# a stale file is ignored and the vectors are computed at run time instead).
BUNDLED = Path(__file__).with_name("topic_vectors.npz")


def descriptions_key() -> str:
    return hashlib.sha256("\n".join(TOPICS.values()).encode()).hexdigest()[:16]


def bundled_vectors(model: str | None) -> npt.NDArray[np.float32] | None:
    """The shipped topic vectors for ``model``, if they match today's descriptions."""
    if not model or not BUNDLED.is_file():
        return None
    with np.load(BUNDLED) as data:
        name = f"{model}:{descriptions_key()}"
        if name not in data.files:
            return None
        vectors: npt.NDArray[np.float32] = data[name].astype(np.float32)
    return vectors if vectors.shape[0] == len(TOPICS) else None


def is_profile(text: str) -> bool:
    """Whether a memory describes the person broadly enough to matter for many
    questions of its topic (module doc)."""
    return bool(_PROFILE.search(text))


def topic_weights(
    vectors: npt.NDArray[np.float32], topics: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Rows of topic probabilities (softmax of cosines / TEMPERATURE)."""
    logits = (vectors @ topics.T) / TEMPERATURE
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.astype(np.float32)
