"""A labelled set of "forget ..." requests, for ``bench.forget_eval`` and the tests.

One user's memories (``MEMORIES``, written as extraction saves them: short
first-person facts), requests to forget in many wordings, each with the memories
it refers to, and messages that are *not* requests to forget (they mention
forgetting, deleting, removing something else). Two splits:

- ``DEV``: what the recognizer's patterns and the matcher's thresholds were tuned on.
- ``HELD_OUT``: written at the same time, before any tuning, and only run for the
  report (``python -m bench.forget_eval --split held_out``): different wordings,
  paraphrases that avoid the memories' words ("the money I owe" for debts, "my
  former partner" for an ex), and negatives in the same style.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEV", "HELD_OUT", "MEMORIES", "Case"]

# id -> text. Topics: old job at Northwind (4), current job (2), the ex, Daniel (3),
# debts (3), health (3), home (3), family (4), hobbies (5), pets (2), food (3), misc.
MEMORIES: dict[str, str] = {
    "job1": "I worked at Northwind Logistics for six years as a dispatcher.",
    "job2": "My old manager at Northwind was called Greg.",
    "job3": "I left Northwind because of the night shifts.",
    "job4": "At my previous job I drove a forklift in the warehouse.",
    "work1": "I work at Solaris Health as a scheduler now.",
    "work2": "My team at Solaris starts at 8 am.",
    "ex1": "My ex-boyfriend Daniel still has my bike.",
    "ex2": "Daniel and I broke up in March.",
    "ex3": "I don't want to run into Daniel at the climbing gym.",
    "debt1": "I owe about 12,000 dollars on my credit cards.",
    "debt2": "I'm paying back a student loan of 30,000.",
    "debt3": "I borrowed 2,000 from my brother Luis last year.",
    "health1": "I have type 1 diabetes.",
    "health2": "I take insulin before meals.",
    "health3": "I sprained my ankle in October.",
    "home1": "I live in Sacramento.",
    "home2": "My apartment is on the third floor with no elevator.",
    "home3": "My landlord is raising the rent in January.",
    "fam1": "My brother Luis lives in Tucson.",
    "fam2": "My mom's birthday is on May 3.",
    "fam3": "My daughter Ines is seven.",
    "fam4": "Ines goes to Riverside Elementary.",
    "hob1": "I go bouldering twice a week.",
    "hob2": "I'm learning to play the cello.",
    "hob3": "I paint miniature figurines.",
    "hob4": "I'm reading the Wheel of Time series.",
    "hob5": "I play Dungeons and Dragons on Fridays.",
    "pet1": "I have a cat named Biscuit.",
    "pet2": "Biscuit is allergic to chicken.",
    "food1": "I'm vegetarian.",
    "food2": "I love spicy Thai food.",
    "food3": "I can't stand cilantro.",
    "misc1": "I drive a 2012 Honda Fit.",
    "misc2": "I'm saving for a trip to Japan.",
    "misc3": "I prefer metric units.",
    "misc4": "My therapist is Dr. Okafor.",
    "misc5": "I'm afraid of flying.",
}


@dataclass(frozen=True, slots=True)
class Case:
    message: str
    expected: frozenset[str] | None  # None: not a request to forget


def _c(message: str, *ids: str) -> Case:
    return Case(message, frozenset(ids))


def _no(message: str) -> Case:
    return Case(message, None)


DEV: list[Case] = [
    _c("Can you forget everything about my old job?", "job1", "job2", "job3", "job4"),
    _c("forget the stuff about my ex", "ex1", "ex2", "ex3"),
    _c("Forget my debts.", "debt1", "debt2", "debt3"),
    _c("Please forget that I have a cat named Biscuit.", "pet1"),
    _c("Delete the memory about my ankle sprain", "health3"),
    _c("please stop remembering that I'm vegetarian", "food1"),
    _c("Could you forget about Daniel?", "ex1", "ex2", "ex3"),
    _c("Forget what I told you about my student loan", "debt2"),
    _c("Remove my mom's birthday from your memory.", "fam2"),
    _c("can you delete everything you know about my health", "health1", "health2", "health3"),
    _c("Forget about the cello.", "hob2"),
    _c("I want you to forget where I live.", "home1"),
    _c("Erase what you know about my landlord.", "home3"),
    _c("Would you please forget my therapist's name?", "misc4"),
    _c("Stop remembering my car.", "misc1"),
    _c("Forget that I'm afraid of flying", "misc5"),
    _c("Wipe the memories about Northwind.", "job1", "job2", "job3"),
    _c("forget anything about my daughter's school", "fam4"),
    _c("Hey, can you forget the thing about me owing my brother money?", "debt3"),
    _c("Please delete what you saved about my D&D group.", "hob5"),
    _c("I'd like you to forget the info about my Japan trip.", "misc2"),
    _c("Forget everything about my cat", "pet1", "pet2"),
    _c("could you stop remembering stuff about my diabetes?", "health1", "health2"),
    _c("Forget about my brother Luis.", "fam1", "debt3"),
    _no("I forgot my keys at the gym again."),
    _no("Don't forget that my mom's birthday is on May 3."),
    _no("How do I delete a branch in git?"),
    _no("Remove the duplicates from this list: 3, 4, 4, 5"),
    _no("Forget it, let's talk about something else."),
    _no("Can you delete the second paragraph of your answer?"),
    _no("Do you forget things when I close the chat?"),
    _no("I keep forgetting to water my plants."),
    _no("Delete my last message please."),
    _no("How can I remove a stain from a carpet?"),
    _no("Remember that I'm learning the cello."),
    _no("Never mind, forget about it."),
]

HELD_OUT: list[Case] = [
    _c("Could you erase the details about the money I owe?", "debt1", "debt2", "debt3"),
    _c("Please no longer remember anything about my former partner.", "ex1", "ex2", "ex3"),
    _c("I'd rather you didn't remember my previous employer.", "job1", "job2", "job3", "job4"),
    _c("Can you get rid of the memory about my kid's age?", "fam3"),
    _c("Drop everything you've stored about my pet.", "pet1", "pet2"),
    _c("forget my medical stuff please", "health1", "health2", "health3"),
    _c("Would you mind deleting the fact that I live in Sacramento?", "home1"),
    _c("Purge what you know about my hobbies.", "hob1", "hob2", "hob3", "hob4", "hob5"),
    _c("You don't need to remember my food preferences anymore.", "food1", "food2", "food3"),
    _c("Scrub the note about my fear of planes.", "misc5"),
    _c("Is it possible to forget who my counsellor is?", "misc4"),
    _c("Forget the credit card thing.", "debt1"),
    _c("ok please remove what I said about the warehouse", "job4"),
    _c("Stop keeping track of my rent situation.", "home3"),
    _no("I totally forgot about the dentist appointment."),
    _no("Can you remove the comments from this Python code?"),
    _no("Why do goldfish forget things so fast?"),
    _no("Delete the last two lines of the poem and try again."),
    _no("Don't forget I'm vegetarian when you suggest recipes."),
    _no("My brother always forgets my birthday."),
    _no("How do I clear my browser cache?"),
    _no("Forget the formal tone, just talk normally."),
]
