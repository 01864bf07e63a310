"""Labelled dialogue for ``bench.memory_extraction --dialogue``: five users, 110 turns.

Each user starts with a few saved memories (``seed``, by label) and then talks:
new facts about themselves (``add``: the key terms each stored fact must
contain), changes of something saved (``update``: the label of the memory that
must be replaced and the terms of its new text), requests to forget (``forget``:
the labels that must go, approved in the chip as a user would), and plenty of
turns with nothing durable (questions, tasks, hypotheticals, facts about other
people or the world).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["USERS", "Turn", "UserDialogue"]


@dataclass(frozen=True)
class Turn:
    message: str
    add: list[tuple[str, ...]] = field(default_factory=list)
    update: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UserDialogue:
    name: str
    seed: dict[str, str]
    turns: list[Turn]


T = Turn

USERS: list[UserDialogue] = [
    UserDialogue(
        "ana",
        {
            "home": "I live in Porto.",
            "job": "I work at Farfetch as a product designer.",
            "diet": "I'm vegetarian.",
            "ex": "My ex-girlfriend Rita still borrows my books.",
            "bike": "I cycle to work every day.",
        },
        [
            T("Can you suggest a quick lunch? Nothing heavy."),
            T("I just adopted a greyhound called Pixel.", add=[("pixel",)]),
            T("What's a good way to stop a dog pulling on the lead?"),
            T("Big news: I moved to Lisbon last week.", update=[("home", ("lisbon",))]),
            T("Which neighbourhoods in Lisbon are quiet?"),
            T("I'm allergic to shellfish, so keep that in mind for recipes.", add=[("shellfish",)]),
            T("Write a haiku about autumn."),
            T("I started eating fish again after ten years.", update=[("diet", ("fish",))]),
            T("Can you forget the stuff about my ex?", forget=["ex"]),
            T("How long should I boil an egg for a runny yolk?"),
            T("My sister Marta is getting married in June.", add=[("marta",)]),
            T("What do people usually give as a wedding gift in Portugal?"),
            T("I'm learning to surf on weekends.", add=[("surf",)]),
            T("If I won the lottery I'd buy a boat. Which boats are cheap to run?"),
            T("I left Farfetch and joined Sonae as a UX lead.", update=[("job", ("sonae",))]),
            T("Explain the difference between UX and UI."),
            T(
                "Now that I live in Lisbon I take the tram to work instead.",
                update=[("bike", ("tram",))],
            ),
            T("What's the weather usually like in Lisbon in March?"),
            T("Please delete the memory about my shellfish allergy.", forget=["+shellfish"]),
            T("Recommend a podcast about design history."),
            T("Thanks, that's all for today!"),
            T("My favourite film is Amélie.", add=[("amelie",)]),
        ],
    ),
    UserDialogue(
        "ben",
        {
            "home": "I live in Leeds.",
            "kids": "My son Jack is 6.",
            "car": "I drive a grey Ford Focus.",
            "debt": "I owe 4,000 pounds on my credit card.",
            "loan": "I'm paying off a car loan of 9,000 pounds.",
            "gym": "I go to the gym on Mondays and Thursdays.",
        },
        [
            T("What's a fun science experiment for a six-year-old?"),
            T("Jack just turned 7 yesterday!", update=[("kids", ("7",))]),
            T("Give me a birthday cake recipe without eggs."),
            T("I'm a secondary school maths teacher.", add=[("maths teacher",)]),
            T("How do I explain fractions with pizza?"),
            T("Forget my debts, I paid everything off.", forget=["debt", "loan"]),
            T("What's a good budgeting app?"),
            T("I sold the Focus and bought a Kia Niro.", update=[("car", ("niro",))]),
            T("How do I charge an electric car at home?"),
            T("I have a bad back, so no heavy lifting exercises please.", add=[("back",)]),
            T("Suggest a 20 minute workout."),
            T("My wife Sophie is a nurse at the LGI.", add=[("sophie",)]),
            T("What shoes are best for nurses on long shifts?"),
            T("Write a limerick about a cat who hates Mondays."),
            T("I now train on Tuesdays and Saturdays instead.", update=[("gym", ("tuesday",))]),
            T("What's the capital of Canada?"),
            T("Can you stop remembering anything about my car?", forget=["car"]),
            T("Is it worth learning Python as a maths teacher?"),
            T("I'm training for the Leeds half marathon in May.", add=[("half marathon",)]),
            T("How many miles a week should a beginner run?"),
            T("My brother thinks running is bad for your knees. Is he right?"),
            T("Cheers, that's helpful."),
        ],
    ),
    UserDialogue(
        "chen",
        {
            "home": "I live in Vancouver.",
            "job": "I work at Telus as a network engineer.",
            "lang": "I'm learning Japanese.",
            "pet": "I have two rabbits, Mochi and Bao.",
            "oldjob1": "At my old job at Shaw I was on call every other weekend.",
            "oldjob2": "My old manager at Shaw was called Dave.",
        },
        [
            T("How do I set up a home VPN?"),
            T("Could you forget everything about my old job?", forget=["oldjob1", "oldjob2"]),
            T("What's a good rabbit-safe houseplant?"),
            T("Bao passed away last night, so it's just Mochi now.", update=[("pet", ("mochi",))]),
            T("How do I help a bonded rabbit grieve?"),
            T("I'm taking the JLPT N3 in December.", add=[("n3",)]),
            T("Quiz me on five N3 kanji."),
            T("I got promoted to senior network engineer.", update=[("job", ("senior",))]),
            T("Draft a thank-you note to my team."),
            T("I'm lactose intolerant.", add=[("lactose",)]),
            T("Is oat milk good in coffee?"),
            T("What's the population of Tokyo?"),
            T(
                "I'm moving to Toronto in the spring for the new role.",
                update=[("home", ("toronto",))],
            ),
            T("What should I know about Toronto winters?"),
            T("I hate small talk at parties."),
            T("My partner Alex is a chef at a ramen shop.", add=[("alex",)]),
            T("Give me a ramen broth recipe."),
            T("Please forget that I'm learning Japanese.", forget=["lang"]),
            T("Summarise the plot of Spirited Away."),
            T("I play badminton every Wednesday.", add=[("badminton",)]),
            T("What's the best grip for a badminton smash?"),
            T("OK bye!"),
        ],
    ),
    UserDialogue(
        "dana",
        {
            "home": "I live in Austin.",
            "health": "I have asthma.",
            "kid": "My daughter Ivy is in third grade.",
            "hobby": "I knit sweaters for my family.",
            "job": "I work remotely for Dell as a data analyst.",
        },
        [
            T("What's a good beginner knitting pattern for a hat?"),
            T("I'm pregnant with our second child, due in August.", add=[("pregnant",)]),
            T("What should I pack in a hospital bag?"),
            T("Ivy moved up to fourth grade this week.", update=[("kid", ("fourth",))]),
            T("Suggest some fourth grade reading books."),
            T("Since the pregnancy I've stopped drinking coffee.", add=[("coffee",)]),
            T("Is decaf safe during pregnancy?"),
            T("What's the boiling point of water at altitude?"),
            T("I quit Dell and now work for Indeed, still remote.", update=[("job", ("indeed",))]),
            T("How do I negotiate a remote salary?"),
            T("Delete what you know about my knitting.", forget=["hobby"]),
            T("Tell me a joke about statisticians."),
            T("My husband Luis is a firefighter.", add=[("luis",)]),
            T("How do firefighters' shifts usually work?"),
            T(
                "We bought a house in Round Rock, so we're out of Austin now.",
                update=[("home", ("round rock",))],
            ),
            T("How far is Round Rock from downtown Austin?"),
            T(
                "My asthma got worse after the move, I use my inhaler daily now.",
                add=[("inhaler",)],
            ),
            T("What air purifier do you recommend?"),
            T("If I had a free week, should I visit Big Bend?"),
            T("Please forget about my pregnancy.", forget=["+pregnant"]),
            T("Convert 5 miles to kilometres."),
            T("Thanks!"),
        ],
    ),
    UserDialogue(
        "eli",
        {
            "home": "I live in Tel Aviv.",
            "job": "I'm a backend developer at Wix.",
            "diet": "I'm vegan.",
            "band": "My favourite band is Radiohead.",
            "sport": "I play basketball on Fridays.",
        },
        [
            T("How do I profile a slow Python service?"),
            T("My favourite band these days is Khruangbin.", update=[("band", ("khruangbin",))]),
            T("Recommend albums similar to Khruangbin."),
            T("I sprained my ankle playing basketball.", add=[("ankle",)]),
            T("How long does a sprained ankle take to heal?"),
            T("Because of my ankle I'm swimming instead of basketball for now.", add=[("swim",)]),
            T("Write a SQL query to find duplicate emails."),
            T(
                "I've been vegetarian rather than vegan since January.",
                update=[("diet", ("vegetarian",))],
            ),
            T("Give me a high-protein vegetarian breakfast."),
            T("My grandmother Esther turns 90 next month.", add=[("esther",)]),
            T("What's a meaningful gift for a 90th birthday?"),
            T("Explain Kubernetes like I'm five."),
            T(
                "I'm moving to Berlin for a job at Zalando.",
                update=[("home", ("berlin",)), ("job", ("zalando",))],
            ),
            T("How do I register my address in Berlin?"),
            T("Can you forget the thing about my ankle?", forget=["+ankle"]),
            T("What's the German word for 'receipt'?"),
            T("I'm colour blind, so avoid red-green charts.", add=[("colour blind",)]),
            T("Which chart palettes are colour-blind safe?"),
            T("Is Rust faster than Go?"),
            T("I don't want you to remember my favourite band.", forget=["band"]),
            T("Who won the 2010 World Cup?"),
            T("Great, thanks."),
        ],
    ),
]
