"""Retrieval quality: keyword-only, dense-only and hybrid over Python's own documentation.

``.venv/bin/python -m bench.knowledge_eval`` prints one table (and writes
bench/results/knowledge_eval.json).

Corpus: the docstrings of the public functions, classes and methods of ~70
standard-library modules installed with this Python (one passage each, the
module as the file and the qualified name as the section): about 3,000 passages.
Questions: 108 hand-written, paraphrased requests ("make a string safe to use
literally inside a regex"), each with the passage(s) that answer it (checked
by reading them: ``re.escape``). Questions rarely use the function's name, so
keyword search must match the docstring's words and dense search the meaning.

The passages go through Parley's own stack: a migrated SQLite database, FTS5,
the embedded all-MiniLM-L6-v2, the numpy vector index and RRF (``Retriever``).
Metrics per mode: recall@10 (a relevant passage in the top 10) and nDCG@10
(single relevant item: 1 / log2(rank + 1)), with MRR for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Table, fmt

MODULES = """json os os.path shutil glob re textwrap string random math statistics itertools
functools collections heapq bisect datetime time calendar hashlib base64 binascii zlib gzip
zipfile tarfile csv urllib.parse html shlex subprocess tempfile fnmatch difflib copy pprint
inspect uuid secrets hmac platform getpass sys operator logging enum dataclasses contextlib
asyncio unicodedata pathlib decimal fractions struct array socket email.utils typing
sqlite3 http.client ipaddress locale codecs io argparse configparser queue threading
traceback warnings weakref wave colorsys""".split()  # noqa: SIM905

# (question, acceptable qualified names)
QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("convert a Python dict to a JSON formatted string", ("json.dumps",)),
    ("parse a JSON document from a string into Python objects", ("json.loads",)),
    ("combine several path components into one path", ("os.path.join", "posixpath.join")),
    ("separate the file extension from a filename", ("os.path.splitext", "posixpath.splitext")),
    ("check whether a file or folder is present on disk", ("os.path.exists", "genericpath.exists")),
    ("create a directory together with all missing parent folders", ("os.makedirs",)),
    ("recursively traverse a directory tree listing files", ("os.walk",)),
    ("delete an entire folder including everything inside it", ("shutil.rmtree",)),
    ("find where an executable program is located on the PATH", ("shutil.which",)),
    ("relocate a file or directory to another place", ("shutil.move",)),
    ("list files matching a wildcard pattern like *.txt", ("glob.glob",)),
    ("replace every occurrence of a regex pattern in some text", ("re.sub",)),
    ("get all non-overlapping matches of a regular expression as a list", ("re.findall",)),
    ("precompile a regular expression into a pattern object", ("re.compile",)),
    ("make a string safe to use literally inside a regex", ("re.escape",)),
    ("break a string apart wherever a pattern matches", ("re.split",)),
    ("remove the common leading indentation from lines of text", ("textwrap.dedent",)),
    ("split a long paragraph into lines of limited width", ("textwrap.wrap",)),
    ("capitalize each word of a sentence", ("string.capwords",)),
    ("randomly reorder the items of a list in place", ("random.shuffle", "random.Random.shuffle")),
    (
        "pick one random element from a non-empty sequence",
        ("random.choice", "random.Random.choice"),
    ),
    (
        "draw k unique items at random without replacement",
        ("random.sample", "random.Random.sample"),
    ),
    (
        "random integer between two bounds, both included",
        ("random.randint", "random.Random.randint"),
    ),
    ("greatest common divisor of integers", ("math.gcd",)),
    ("test whether two floating point values are approximately equal", ("math.isclose",)),
    ("product of all positive integers up to n", ("math.factorial",)),
    ("Euclidean length of a vector from its coordinates", ("math.hypot",)),
    ("arithmetic average of a list of numbers", ("statistics.mean",)),
    ("the middle value of a dataset", ("statistics.median",)),
    ("sample standard deviation of data", ("statistics.stdev",)),
    ("iterate over several iterables one after another", ("itertools.chain",)),
    ("group consecutive elements that share a key", ("itertools.groupby",)),
    ("all possible orderings of the elements", ("itertools.permutations",)),
    (
        "choose r elements from a collection where order does not matter",
        ("itertools.combinations",),
    ),
    ("cartesian product of input iterables", ("itertools.product",)),
    ("take a slice of an iterator without building a list", ("itertools.islice",)),
    ("memoize a function's results with a bounded cache", ("functools.lru_cache",)),
    ("fold a sequence into one value by applying a two-argument function", ("functools.reduce",)),
    ("new callable with some arguments already filled in", ("functools.partial",)),
    (
        "copy the name and docstring of the wrapped function onto a decorator's wrapper",
        ("functools.wraps", "functools.update_wrapper"),
    ),
    ("count how many times each item occurs", ("collections.Counter",)),
    ("tuple subclass with named fields", ("collections.namedtuple",)),
    ("dictionary that remembers the order keys were inserted", ("collections.OrderedDict",)),
    ("dict that supplies missing values from a factory", ("collections.defaultdict",)),
    ("double-ended queue with fast appends and pops on both ends", ("collections.deque",)),
    ("add an item to a priority queue heap", ("heapq.heappush",)),
    ("find the n biggest elements of a dataset", ("heapq.nlargest",)),
    ("insert into a sorted list keeping it sorted", ("bisect.insort_right", "bisect.insort")),
    (
        "where should a value be inserted in a sorted list to keep order",
        ("bisect.bisect_left", "bisect.bisect_right", "bisect.bisect"),
    ),
    ("parse a date string according to a format", ("datetime.datetime.strptime",)),
    ("convert a POSIX timestamp into a date and time object", ("datetime.datetime.fromtimestamp",)),
    ("pause execution for a number of seconds", ("time.sleep",)),
    ("current time in seconds since the epoch", ("time.time",)),
    ("high resolution clock for timing short durations", ("time.perf_counter",)),
    ("format a time tuple as a string", ("time.strftime",)),
    ("is a given year a leap year", ("calendar.isleap",)),
    ("weekday of the first day and number of days in a month", ("calendar.monthrange",)),
    ("derive a key from a password with many iterations", ("hashlib.pbkdf2_hmac",)),
    ("encode bytes using base64", ("base64.b64encode",)),
    ("decode base64 that uses - and _ instead of + and /", ("base64.urlsafe_b64decode",)),
    ("hexadecimal representation of binary data", ("binascii.hexlify", "binascii.b2a_hex")),
    ("compress bytes with the deflate algorithm", ("zlib.compress",)),
    ("open a gzip compressed file in binary or text mode", ("gzip.open",)),
    ("check whether a file is a ZIP archive", ("zipfile.is_zipfile",)),
    ("open a tar archive for reading or writing", ("tarfile.open", "tarfile.TarFile.open")),
    ("read rows from a comma separated values file", ("csv.reader",)),
    ("split a URL into scheme, network location, path and query", ("urllib.parse.urlparse",)),
    ("percent-encode special characters in part of a URL", ("urllib.parse.quote",)),
    ("build a query string from a dictionary of parameters", ("urllib.parse.urlencode",)),
    ("resolve a relative link against a base URL", ("urllib.parse.urljoin",)),
    ("convert &, < and > to HTML-safe sequences", ("html.escape",)),
    ("turn character references like &amp; back into characters", ("html.unescape",)),
    ("split a shell command line into arguments respecting quotes", ("shlex.split",)),
    ("escape a string so a shell treats it as one word", ("shlex.quote",)),
    ("run a command, wait for it to finish and capture its output", ("subprocess.run",)),
    ("run a program and return what it printed", ("subprocess.check_output",)),
    ("create a temporary directory securely", ("tempfile.mkdtemp",)),
    ("temporary file that has a visible name in the file system", ("tempfile.NamedTemporaryFile",)),
    ("test whether a filename matches a shell-style pattern", ("fnmatch.fnmatch",)),
    ("suggest similar words for a misspelled word", ("difflib.get_close_matches",)),
    (
        "show the differences between two lists of lines in unified format",
        ("difflib.unified_diff",),
    ),
    ("recursively duplicate an object and everything it contains", ("copy.deepcopy",)),
    ("pretty-printed string of a nested data structure", ("pprint.pformat",)),
    ("get the parameters of a callable", ("inspect.signature",)),
    ("retrieve the source code text of a function", ("inspect.getsource",)),
    ("truncate text to fit a width, adding a placeholder", ("textwrap.shorten",)),
    ("generate a random unique identifier", ("uuid.uuid4",)),
    ("random hexadecimal string suitable for security tokens", ("secrets.token_hex",)),
    (
        "compare two secrets in constant time to prevent timing attacks",
        ("hmac.compare_digest", "secrets.compare_digest"),
    ),
    ("name of the operating system, like Linux or Windows", ("platform.system",)),
    ("prompt for a password without echoing it", ("getpass.getpass", "getpass.unix_getpass")),
    ("memory size of an object in bytes", ("sys.getsizeof",)),
    ("read an environment variable with a default", ("os.getenv",)),
    ("callable that fetches items by index or key, handy for sorting", ("operator.itemgetter",)),
    ("quickly configure the root logger", ("logging.basicConfig",)),
    ("convert a dataclass instance into a dictionary", ("dataclasses.asdict",)),
    ("customize a dataclass field with a default factory", ("dataclasses.field",)),
    ("ignore specific exceptions inside a with block", ("contextlib.suppress",)),
    ("write a context manager as a generator function", ("contextlib.contextmanager",)),
    ("run awaitables concurrently and collect their results", ("asyncio.gather",)),
    ("wait for a coroutine but give up after a timeout", ("asyncio.wait_for",)),
    ("apply NFC or NFKD unicode normalization to a string", ("unicodedata.normalize",)),
    ("exact decimal arithmetic for money", ("decimal.Decimal",)),
    ("rational numbers as numerator and denominator", ("fractions.Fraction",)),
    ("pack values into bytes according to a format string", ("struct.pack",)),
    (
        "check if an address belongs to a private network",
        (
            "ipaddress.IPv4Address.is_private",
            "ipaddress.IPv6Address.is_private",
            "ipaddress.ip_address",
        ),
    ),
    (
        "parse an email date header into a timestamp",
        ("email.utils.parsedate_to_datetime", "email.utils.parsedate", "email.utils.parsedate_tz"),
    ),
    ("convert RGB colors to hue, saturation, value", ("colorsys.rgb_to_hsv",)),
]


def _passages() -> list[tuple[str, str, str]]:
    """(module, qualified name, text) for every documented public object."""
    out: dict[str, tuple[str, str, str]] = {}

    def add(module: str, qualname: str, obj: Any) -> None:
        doc = inspect.getdoc(obj)
        if not doc or len(doc) < 30 or qualname in out:
            return
        try:
            signature = str(inspect.signature(obj))
        except (TypeError, ValueError):
            signature = ""
        name = qualname.rsplit(".", 1)[-1]
        out[qualname] = (module, qualname, f"{name}{signature}\n{doc[:1500]}")

    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for attr in sorted(dir(module)):
            if attr.startswith("_"):
                continue
            obj = getattr(module, attr)
            if not (inspect.isroutine(obj) or inspect.isclass(obj)):
                continue
            add(module_name, f"{module_name}.{attr}", obj)
            if inspect.isclass(obj) and getattr(obj, "__module__", "").startswith(
                module_name.split(".")[0]
            ):
                for member in sorted(vars(obj)):
                    if member.startswith("_"):
                        continue
                    value = getattr(obj, member, None)
                    if inspect.isroutine(value) or isinstance(value, property):
                        target = value.fget if isinstance(value, property) else value
                        add(module_name, f"{module_name}.{attr}.{member}", target)
    return list(out.values())


async def evaluate(quick: bool = False) -> Table:
    from sqlalchemy import insert

    from bench.knowledge_heldout import HELD_OUT
    from parley.embeddings import LocalEmbedder
    from parley.knowledge.index import VectorIndex, keyword_search
    from parley.knowledge.ingest import embed_text
    from parley.knowledge.retrieval import CANDIDATES, KEYWORD_WEIGHT, RRF_K, Retriever, rrf
    from parley.knowledge.tables import KnowledgeChunk, KnowledgeFile
    from parley.storage.db import Database
    from parley.storage.tables import User

    passages = _passages()
    names = {qualname for _, qualname, _ in passages}

    def usable(
        items: list[tuple[str, tuple[str, ...]]],
    ) -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
        kept = [(q, tuple(a for a in answers if a in names)) for q, answers in items]
        return [(q, a) for q, a in kept if a], [q for q, a in kept if not a]

    questions, missing = usable(QUESTIONS)
    held_out, missing_held = usable(HELD_OUT)
    if quick:
        questions = questions[:30]
        held_out = held_out[:30]

    tmp = tempfile.TemporaryDirectory()
    db = Database(f"sqlite+aiosqlite:///{Path(tmp.name) / 'eval.db'}")
    await db.migrate()
    embedder = LocalEmbedder()
    index = VectorIndex(db)
    started = time.perf_counter()
    async with db.session() as session:
        user = User(email="eval@example.test", password_hash="x")
        session.add(user)
        await session.flush()
        files: dict[str, str] = {}
        for module in sorted({m for m, _, _ in passages}):
            row = KnowledgeFile(
                user_id=user.id,
                sha256="0" * 64,
                filename=module,
                media_type="text/plain",
                kind="text",
                size_bytes=0,
                status="ready",
            )
            session.add(row)
            await session.flush()
            files[module] = row.id
        rows = [
            {
                "file_id": files[m],
                "user_id": user.id,
                "ordinal": i,
                "text": text,
                "page": None,
                "section": q,
                "char_start": 0,
                "char_end": len(text),
                "tokens": len(text) // 4,
            }
            for i, (m, q, text) in enumerate(passages)
        ]
        await session.execute(insert(KnowledgeChunk), rows)
        await session.commit()
        chunks = (
            await session.execute(
                KnowledgeChunk.__table__.select().order_by(KnowledgeChunk.id)  # type: ignore[attr-defined]
            )
        ).all()
    by_file = {v: k for k, v in files.items()}
    for start in range(0, len(chunks), 256):
        batch = chunks[start : start + 256]
        vectors = await embedder.embed(
            [embed_text(by_file[c.file_id], c.section, c.text) for c in batch]
        )
        async with db.session() as session:
            await index.write(
                session,
                embedder.name,
                [(c.id, c.user_id, c.file_id, vectors[i]) for i, c in enumerate(batch)],
            )
            await session.commit()
    index_s = time.perf_counter() - started
    retriever = Retriever(db, embedder, index)
    section_of = {c.id: c.section for c in chunks}

    # Each list once per question; fusions are computed from them (and the shipping
    # default is also run end to end through Retriever.search, as answers do).
    async def single_lists(
        qs: list[tuple[str, tuple[str, ...]]],
    ) -> list[tuple[list[int], list[int]]]:
        qvectors = await embedder.embed([q for q, _ in qs])
        out: list[tuple[list[int], list[int]]] = []
        async with db.session() as session:
            for i, (question, _) in enumerate(qs):
                keyword = await keyword_search(session, user.id, question, None, CANDIDATES)
                found = await index.search(user.id, embedder.name, qvectors[i], None, CANDIDATES)
                out.append((keyword, [cid for cid, _ in found]))
        return out

    async def shipped_lists(qs: list[tuple[str, tuple[str, ...]]]) -> list[list[int]]:
        out = []
        for question, _ in qs:
            hits = await retriever.search(user.id, question, limit=10, mode="hybrid")
            out.append([h.chunk_id for h in hits])
        return out

    def score_set(
        rankings: list[list[int]], qs: list[tuple[str, tuple[str, ...]]]
    ) -> dict[str, float]:
        recall = ndcg = mrr = 0.0
        for ranked_ids, (_, answers) in zip(rankings, qs, strict=True):
            ranked = [section_of[c] for c in ranked_ids[:10]]
            rank = next((i + 1 for i, s in enumerate(ranked) if s in answers), None)
            if rank is not None:
                recall += 1
                ndcg += 1 / math.log2(rank + 1)
                mrr += 1 / rank
        n = len(qs)
        return {"recall@10": recall / n, "nDCG@10": ndcg / n, "MRR@10": mrr / n}

    lists = await single_lists(questions)

    def score(rankings: list[list[int]]) -> dict[str, float]:
        return score_set(rankings, questions)

    results: dict[str, dict[str, float]] = {
        "keyword": score([k for k, _ in lists]),
        "dense": score([d for _, d in lists]),
    }
    sweep = {}
    for weight in (1.0, 0.75, 0.5, 0.35, 0.25):
        fused = [[c for c, _ in rrf([k, d], k=60, weights=[weight, 1.0])] for k, d in lists]
        sweep[weight] = score(fused)
    grid = {}
    for rrf_k in (60, 20, 5):
        for depth in (50, 20, 10):
            for weight in (1.0, 0.5):
                fused = [
                    [c for c, _ in rrf([k[:depth], d], k=rrf_k, weights=[weight, 1.0])]
                    for k, d in lists
                ]
                grid[f"k={rrf_k} depth={depth} w={weight}"] = score(fused)
    halves = {}
    for name, part in (("odd", 1), ("even", 0)):
        picked = [i for i in range(len(questions)) if i % 2 == part]
        keep = questions
        questions = [keep[i] for i in picked]
        fused = [
            [c for c, _ in rrf([lists[i][0], lists[i][1]], weights=[KEYWORD_WEIGHT, 1.0])]
            for i in picked
        ]
        halves[name] = {"hybrid": score(fused), "dense": score([lists[i][1] for i in picked])}
        questions = keep
    shipped = await shipped_lists(questions)
    results["hybrid"] = score(shipped)
    held_lists = await single_lists(held_out)
    held_shipped = await shipped_lists(held_out)
    held = {
        "keyword": score_set([k for k, _ in held_lists], held_out),
        "dense": score_set([d for _, d in held_lists], held_out),
        "hybrid": score_set(held_shipped, held_out),
    }
    per_question = [
        {"question": q, "keyword": k[:10], "dense": d[:10], "hybrid": h}
        for (q, _), (k, d), h in zip(questions, lists, shipped, strict=True)
    ]
    await db.dispose()
    tmp.cleanup()

    table = Table(
        "knowledge_eval",
        f"Retrieval quality: {len(questions)} + {len(held_out)} held-out questions over "
        f"{len(passages):,} stdlib docstrings",
        "keyword / dense",
    )
    for label, res in (("tuning set", results), ("held-out", held)):
        for metric in ("recall@10", "nDCG@10", "MRR@10"):
            best_single = max(res["keyword"][metric], res["dense"][metric])
            table.add(
                f"{metric} (hybrid, {label})",
                fmt(res["hybrid"][metric], digits=3),
                f"{res['keyword'][metric]:.3f} / {res['dense'][metric]:.3f}",
                "> both" if metric != "MRR@10" else "-",
                res["hybrid"][metric] > best_single if metric != "MRR@10" else None,
            )
    table.notes.append(
        f"indexed {len(passages):,} passages (MiniLM numpy) in {index_s:.0f} s; "
        f"{len(missing)} + {len(missing_held)} question(s) skipped (answer not in this "
        f"Python's docs); tuning set {len(questions)}, held-out {len(held_out)} "
        "(bench/knowledge_heldout.py: written after the constants were fixed, never tuned on)"
    )
    table.notes.append(
        f"hybrid = RRF (k={RRF_K}) with keyword weight {KEYWORD_WEIGHT}; nDCG@10 (k=60) by "
        "keyword weight: "
        + ", ".join(f"{w}: {r['nDCG@10']:.3f}" for w, r in sweep.items())
        + " (1.0 is plain RRF)"
    )
    table.notes.append(
        "halves (hybrid vs dense nDCG@10): "
        + ", ".join(
            f"{n}: {h['hybrid']['nDCG@10']:.3f} vs {h['dense']['nDCG@10']:.3f}"
            for n, h in halves.items()
        )
        + "; the fusion constants were chosen on the tuning set only"
    )
    table.notes.append("references: SciFact nDCG@10 BM25 0.665, MiniLM ~0.645, hybrid RRF ~0.73")
    table.raw = {
        "results": results,
        "held_out": held,
        "sweep": {str(w): r for w, r in sweep.items()},
        "grid": grid,
        "halves": halves,
        "lists": [{"keyword": k, "dense": d} for k, d in lists],
        "questions": per_question,
        "skipped": missing,
    }
    return table


def run(quick: bool = False) -> Table:
    return asyncio.run(evaluate(quick))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 questions")
    args = parser.parse_args()
    table = run(args.quick)
    print(table.render())
    from bench.common import save

    save([table], args.quick)


if __name__ == "__main__":
    main()
