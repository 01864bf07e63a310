"""Pairs of chat messages for the update rules (``test_memory_updates.py``).

``TRUE_UPDATES``: the second message states a new value of the same attribute of
the same person; it must replace the first (which goes to the history).
``SAME_TOPIC``: the second shares a topic (a person, a place, a thing) with the
first but states another attribute; the first must stay as it is.
"""

from __future__ import annotations

TRUE_UPDATES: list[tuple[str, str]] = [
    ("I live in Paris these days.", "Actually I moved to Lyon last month."),
    ("I work at Acme Corp as a developer.", "I joined Globex in March, so no more Acme."),
    ("I'm vegetarian, by the way.", "I started eating meat again."),
    ("My girlfriend is called Maya.", "I'm single now, Maya and I broke up."),
    ("I'm 34 years old.", "I just turned 35 last week."),
    ("I drive a Toyota Corolla.", "I sold the Corolla and now drive a Tesla."),
    ("My favourite band is Radiohead.", "These days my favorite band is Big Thief."),
    ("I take the bus to work.", "I cycle to work now."),
    ("My sister lives in Madrid.", "My sister moved to Berlin."),
    ("I'm a nurse at St Mary's.", "I'm a paramedic now."),
    ("I wake up at 6 every day.", "I get up at 7:30 these days."),
    ("I use imperial units.", "I prefer metric now."),
]

SAME_TOPIC: list[tuple[str, str]] = [
    (
        "I tore a ligament in my knee skiing last winter.",
        "Because of my knee we moved to a ground-floor flat in Lyon.",
    ),
    ("My daughter Zoe was born in June.", "Since Zoe was born I've stopped drinking coffee."),
    ("I work at Globex as a data analyst.", "I commute to Globex by train."),
    ("I live in Oslo.", "My neighbour in Oslo has a loud dog."),
    ("I'm vegetarian, by the way.", "My favourite restaurant is a vegan place called Greens."),
    ("My husband is named Tom.", "Tom and I go hiking every Sunday."),
    ("I'm 41 years old.", "I'm running my first marathon for my 41st birthday."),
    ("I drive a Honda Civic.", "My Civic failed its inspection last week."),
    ("I moved to Denver in 2021.", "I broke my wrist moving boxes into the Denver apartment."),
    ("I work as a teacher.", "My school is closing for renovations next month."),
    ("My sister lives in Madrid.", "My sister just had a baby girl."),
    ("I'm allergic to peanuts.", "I became vegan after my allergy got worse."),
]
