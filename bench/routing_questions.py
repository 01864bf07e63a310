"""A small labelled set for Auto's light/hard classifier (``parley.routing.classify``).

Written for this purpose: everyday questions a chat assistant gets, each labelled
by what model it needs: ``light`` (a small, cheap model answers it well: a lookup,
a definition, a short rewrite, small talk) or ``hard`` (it needs reasoning, code,
planning or a long careful answer). Every other pair of items is held out: the classifier's
weights and threshold were chosen looking at the ``train`` half only, and the
``held_out`` half measures it (``python -m bench routing``; a test keeps the held-out
accuracy above its floor).
"""

from __future__ import annotations

LABELLED: list[tuple[str, str]] = [
    ("What is the capital of Australia?", "light"),
    ("Prove that the square root of 2 is irrational.", "hard"),
    ("hi!", "light"),
    (
        "Design a database schema for a library that lends books, tracks holds and fines, "
        "and explain the trade-offs of your choices.",
        "hard",
    ),
    ("Translate 'good morning' into Spanish.", "light"),
    (
        "Why does my Python script raise 'RecursionError: maximum recursion depth exceeded' "
        "when I parse a deeply nested JSON file, and how would you fix it?",
        "hard",
    ),
    ("How many days are in a leap year?", "light"),
    ("Write a function that merges overlapping intervals and analyze its complexity.", "hard"),
    ("Define photosynthesis in one sentence.", "light"),
    ("Compare PostgreSQL and MongoDB for a multi-tenant SaaS with heavy reporting needs.", "hard"),
    ("Who wrote Pride and Prejudice?", "light"),
    ("```\ndef f(x):\n    return x * f(x - 1)\n```\nWhat is wrong with this code?", "hard"),
    ("Thanks, that helps!", "light"),
    (
        "Plan a 3-month migration of a monolith to microservices with a team of five, "
        "with milestones and risks.",
        "hard",
    ),
    ("What's the boiling point of water in Fahrenheit?", "light"),
    ("Explain step by step how RSA encryption works, with a small numeric example.", "hard"),
    ("Give me a synonym for happy.", "light"),
    ("Our API's p99 latency doubled after we added a cache. How would you debug this?", "hard"),
    ("When did World War II end?", "light"),
    ("Derive the formula for the sum of a geometric series.", "hard"),
    ("What does 'ephemeral' mean?", "light"),
    (
        "Refactor this class to remove the race condition between the two threads that "
        "update the counter, and explain why it happens.",
        "hard",
    ),
    ("Is a tomato a fruit?", "light"),
    ("Evaluate the strengths and weaknesses of event sourcing for a banking ledger.", "hard"),
    ("Spell 'necessary'.", "light"),
    ("Write a detailed essay on the causes of the 2008 financial crisis.", "hard"),
    ("What time zone is Tokyo in?", "light"),
    ("Implement a thread-safe LRU cache in Java and explain the locking strategy.", "hard"),
    ("Convert 5 km to miles.", "light"),
    ("Given the integral of x*e^x dx, solve it and show each step.", "hard"),
    ("Hello, how are you today?", "light"),
    ("How would you scale a websocket chat server to a million concurrent users?", "hard"),
    ("Who is the CEO of a company called Acme? Just a guess is fine.", "light"),
    (
        "Critique my proposal: we will store all user passwords encrypted with AES so that "
        "support staff can read them back when users forget them.",
        "hard",
    ),
    ("What is 15% of 200?", "light"),
    (
        "Analyze this SQL and optimize it:\nSELECT * FROM orders o JOIN users u ON u.id = "
        "o.user_id WHERE u.country = 'FR' ORDER BY o.created_at;",
        "hard",
    ),
    ("Name three primary colors.", "light"),
    (
        "My Kubernetes pods keep getting OOMKilled only at night. What could cause this and "
        "how do I find out? We run batch jobs, a cache and the API in the same cluster.",
        "hard",
    ),
    ("What's a good name for a goldfish?", "light"),
    (
        "Explain why quicksort is O(n log n) on average but O(n^2) in the worst case, and "
        "how randomization helps.",
        "hard",
    ),
    ("Rewrite this sentence more politely: send me the file now.", "light"),
    (
        "Compare three approaches to rate limiting (token bucket, leaky bucket, sliding "
        "window) and recommend one for a public API.",
        "hard",
    ),
    ("How do you say thank you in Japanese?", "light"),
    (
        "Write a bash script that backs up a directory daily, keeps 7 copies and emails on "
        "failure; explain each part.",
        "hard",
    ),
    ("What is the largest planet?", "light"),
    (
        "Is it better to rent or buy a house? Consider interest rates, mobility and taxes "
        "and walk me through a decision framework.",
        "hard",
    ),
    ("What color do you get mixing blue and yellow?", "light"),
    ("Why do we see the moon's same side? Explain tidal locking in detail.", "hard"),
]


def split() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, held_out): alternate pairs of items (the list alternates labels, so
    each half gets both labels equally)."""
    train = [item for i, item in enumerate(LABELLED) if i % 4 < 2]
    held_out = [item for i, item in enumerate(LABELLED) if i % 4 >= 2]
    return train, held_out
