"""Development questions for ``bench.knowledge_recall`` (the levers were chosen on these).

Three kinds, as in issue 13's review of file search:

- ``plain``: worded like the documentation (the words of the passage are in it);
- ``para``: paraphrased, avoiding the object's name and the first lines' vocabulary
  (how someone who does not know the library would ask);
- ``value``: one exact value, a default, limit, port, code or flag, found in a
  table row (and sometimes also in a signature).

Each answer is a list of alternatives; a passage *contains the answer* when it
holds every string of one alternative. A string starting with ``=`` must be a whole
line (a heading: ``=textwrap.wrap`` is the start of that function's entry, not a
row of a defaults table that names it). Written against the corpus of
``bench.knowledge_corpus`` by reading it; the held-out split
(``bench.knowledge_questions_heldout``) was written after this one.
"""

from __future__ import annotations

Answer = tuple[str, ...]
Question = tuple[str, str, list[Answer]]  # (kind, question, alternatives)

DEV: list[Question] = [
    # ---------------------------------------------------------------- plain
    ("plain", "recursively delete a directory tree", [("=shutil.rmtree",)]),
    ("plain", "escape special characters in a string for a regular expression", [("=re.escape",)]),
    ("plain", "remove common leading whitespace from every line of text", [("=textwrap.dedent",)]),
    ("plain", "choose k unique random elements from a population", [("=random.sample",)]),
    ("plain", "find the n largest elements in a dataset", [("=heapq.nlargest",)]),
    ("plain", "serialize an object to a JSON formatted str", [("=json.dumps",)]),
    ("plain", "split a string using shell-like syntax", [("=shlex.split",)]),
    (
        "plain",
        "run a command with arguments and return its output",
        [("=subprocess.check_output",)],
    ),
    ("plain", "list of the best good enough matches for a word", [("=difflib.get_close_matches",)]),
    ("plain", "deep copy operation on arbitrary Python objects", [("=copy.deepcopy",)]),
    ("plain", "return a random URL-safe text string", [("=secrets.token_urlsafe",)]),
    ("plain", "context manager to suppress specified exceptions", [("=contextlib.suppress",)]),
    ("plain", "join a base URL and a possibly relative URL", [("=urllib.parse.urljoin",)]),
    (
        "plain",
        "parse an address into its realname and email address",
        [("=email.utils.parseaddr",)],
    ),
    ("plain", "guess the type of a file based on its URL", [("=mimetypes.guess_type",)]),
    ("plain", "weekday and number of days for a month", [("=calendar.monthrange",)]),
    ("plain", "least-recently-used cache decorator", [("=functools.lru_cache",)]),
    ("plain", "successive r-length permutations of elements", [("=itertools.permutations",)]),
    ("plain", "dict subclass for counting hashable items", [("=collections.Counter",)]),
    (
        "plain",
        "insert an item into a list and keep it sorted",
        [("=bisect.insort",), ("=bisect.insort_left",)],
    ),
    ("plain", "Pearson's correlation coefficient of two inputs", [("=statistics.correlation",)]),
    (
        "plain",
        "insert a simple entry into the list of warnings filters",
        [("=warnings.simplefilter",)],
    ),
    ("plain", "encode a dict into a URL query string", [("=urllib.parse.urlencode",)]),
    ("plain", "size in bytes of the struct described by a format string", [("=struct.calcsize",)]),
    ("plain", "wait for a coroutine to complete with a timeout", [("=asyncio.wait_for",)]),
    (
        "plain",
        "connect to a TCP address and return the socket object",
        [("=socket.create_connection",)],
    ),
    (
        "plain",
        "call a function after a specified number of seconds in a thread",
        [("=threading.Timer",)],
    ),
    ("plain", "time the execution of a small statement many times", [("=timeit.timeit",)]),
    (
        "plain",
        "parse XML from a string constant and return an element",
        [("=xml.etree.ElementTree.fromstring",), ("=xml.etree.ElementTree.XML",)],
    ),
    ("plain", "topologically sort a graph of hashable nodes", [("=graphlib.TopologicalSorter",)]),
    # ---------------------------------------------------------------- paraphrased
    ("para", "wipe out a folder along with everything beneath it", [("=shutil.rmtree",)]),
    (
        "para",
        "make user text harmless before putting it inside a pattern so dots and stars lose their meaning",  # noqa: E501
        [("=re.escape",)],
    ),
    (
        "para",
        "strip the indentation shared by all lines of a triple-quoted block",
        [("=textwrap.dedent",)],
    ),
    (
        "para",
        "put the items of my list into an unpredictable order without making a new list",
        [("=random.shuffle",)],
    ),
    (
        "para",
        "lazily combine several already ordered streams into one ordered stream",
        [("=heapq.merge",)],
    ),
    ("para", "largest whole number whose second power does not exceed n", [("=math.isqrt",)]),
    (
        "para",
        "a line of items where I can add or take away at either end quickly",
        [("=collections.deque",)],
    ),
    (
        "para",
        "turn the text I received from a web API into dictionaries and lists",
        [("=json.loads",)],
    ),
    (
        "para",
        "make an argument safe to paste into a bash command line even when it has spaces",
        [("=shlex.quote",)],
    ),
    (
        "para",
        "launch an external program, wait until it exits and get back an object holding its exit status",  # noqa: E501
        [("=subprocess.run",)],
    ),
    (
        "para",
        "show what changed between two versions of a file in the format patch tools read, with plus and minus markers",  # noqa: E501
        [("=difflib.unified_diff",)],
    ),
    (
        "para",
        "pre-fill some parameters of a callable so later calls need fewer inputs",
        [("=functools.partial",)],
    ),
    (
        "para",
        "bunch together runs of neighbouring items that share the same property",
        [("=itertools.groupby",)],
    ),
    (
        "para",
        "mapping that invents an initial entry automatically the first time you look up an absent name",  # noqa: E501
        [("=collections.defaultdict",)],
    ),
    (
        "para",
        "manage an unknown number of with-statement resources and unwind all of them at the end",
        [("=contextlib.ExitStack",)],
    ),
    (
        "para",
        "convert spaces and other unsafe symbols in part of a web address into percent codes",
        [("=urllib.parse.quote",)],
    ),
    ("para", "does February have 29 days in a given year", [("=calendar.isleap",)]),
    (
        "para",
        "the most precise stopwatch to measure how long a short piece of code takes",
        [("=time.perf_counter",)],
    ),
    (
        "para",
        "a signal one worker can switch on so that the others blocked waiting for it can proceed",
        [("=threading.Event",)],
    ),
    (
        "para",
        "run several async jobs at once and get every outcome back as a list",
        [("=asyncio.gather",)],
    ),
    (
        "para",
        "one-shot setup of diagnostic output for a small script: level, message layout and destination file",  # noqa: E501
        [("=logging.basicConfig",)],
    ),
    (
        "para",
        "turn a byte string produced earlier back into the original Python object",
        [("=pickle.loads",)],
    ),
    (
        "para",
        "find out which parameters a function accepts and their default values",
        [("=inspect.signature",)],
    ),
    ("para", "what is this computer called on the network", [("=socket.gethostname",)]),
    (
        "para",
        "direction of a complex value measured from the positive real axis",
        [("=cmath.phase",)],
    ),
    ("para", "turn a tree node back into markup bytes", [("=xml.etree.ElementTree.tostring",)]),
    (
        "para",
        "order tasks so that each one comes after everything it depends on",
        [("=graphlib.TopologicalSorter",)],
    ),
    (
        "para",
        "represent raw bytes as printable text using letters, digits, plus and slash",
        [("=base64.b64encode",)],
    ),
    ("para", "how many different committees of 3 can be formed from 10 people", [("=math.comb",)]),
    (
        "para",
        "decode a packed binary record from a network header into numbers",
        [("=struct.unpack",)],
    ),
    # ---------------------------------------------------------------- exact values
    (
        "value",
        "Which port does the mail-sending client use by default for implicit TLS?",
        [("| smtplib.SMTP_SSL_PORT | 465 |",), ("smtplib.SMTP_SSL_PORT", "465")],
    ),
    (
        "value",
        "What port does the IMAP client connect to for secure connections?",
        [("| imaplib.IMAP4_SSL_PORT | 993 |",), ("imaplib.IMAP4_SSL_PORT", "993")],
    ),
    (
        "value",
        "default port of the POP3 mailbox client",
        [("| poplib.POP3_PORT | 110 |",), ("poplib.POP3_PORT", "110")],
    ),
    (
        "value",
        "What compression level does gzip.open use unless told otherwise?",
        [("| gzip.open | compresslevel | 9 |",), ("=gzip.open", "compresslevel=9")],
    ),
    (
        "value",
        "default similarity cutoff for get_close_matches",
        [
            ("| difflib.get_close_matches | cutoff | 0.6 |",),
            ("=difflib.get_close_matches", "cutoff=0.6"),
        ],
    ),
    (
        "value",
        "How many columns wide are lines wrapped by default?",
        [
            ("| textwrap.wrap | width | 70 |",),
            ("=textwrap.wrap", "width=70"),
            ("| textwrap.fill | width | 70 |",),
            ("=textwrap.fill", "width=70"),
        ],
    ),
    (
        "value",
        "What line width does the pretty printer's pformat assume by default?",
        [("| pprint.pformat | width | 80 |",), ("=pprint.pformat", "width=80")],
    ),
    (
        "value",
        "how many times does timeit run the statement by default",
        [("timeit.timeit", "number", "1000000"), ("=timeit.timeit", "number=1000000")],
    ),
    (
        "value",
        "default bufsize when opening a tar archive",
        [("| tarfile.open | bufsize | 10240 |",), ("tarfile.open", "bufsize=10240")],
    ),
    (
        "value",
        "maximum depth of nested interpolation in configparser",
        [("| configparser.MAX_INTERPOLATION_DEPTH | 10 |",)],
    ),
    (
        "value",
        "How many random bytes do the token functions use when no size is given?",
        [("| secrets.DEFAULT_ENTROPY | 32 |",)],
    ),
    (
        "value",
        "buffer size shutil uses when copying file contents",
        [("| shutil.COPY_BUFSIZE | 65536 |",)],
    ),
    ("value", "maximum line length of base64 encoded output", [("| base64.MAXLINESIZE | 76 |",)]),
    (
        "value",
        "What is the largest year a date object can hold?",
        [("| datetime.MAXYEAR | 9999 |",)],
    ),
    ("value", "numeric error code for 'No space left on device'", [("| ENOSPC | 28 |",)]),
    ("value", "Which HTTP status code is the teapot joke?", [("| 418 | I'm a Teapot |",)]),
    (
        "value",
        "status code for a client that sent too many requests in a given amount of time",
        [("| 429 | Too Many Requests |",)],
    ),
    ("value", "signal number that kills a process and cannot be caught", [("| SIGKILL | 9 |",)]),
    ("value", "media type for files ending in .svg", [("| .svg | image/svg+xml |",)]),
    (
        "value",
        "default maxsize of a queue.Queue",
        [("| queue.Queue | maxsize | 0 |",), ("=queue.Queue", "maxsize=0")],
    ),
    (
        "value",
        "numeric value of the csv flag that quotes every non-numeric field",
        [("| csv.QUOTE_NONNUMERIC | 2 |",)],
    ),
    (
        "value",
        "standard control port of the FTP client",
        [("| ftplib.FTP_PORT | 21 |",), ("ftplib.FTP_PORT", "21")],
    ),
    (
        "value",
        "highest protocol version the object serializer supports",
        [("pickle.HIGHEST_PROTOCOL", "5")],
    ),
    (
        "value",
        "number of bits in an IPv6 address according to the ipaddress constants",
        [("| ipaddress.IPV6LENGTH | 128 |",)],
    ),
    (
        "value",
        "how many intervals does statistics.quantiles divide data into by default",
        [("| statistics.quantiles | n | 4 |",), ("=statistics.quantiles", "n=4")],
    ),
    (
        "value",
        "default flag when opening a shelf",
        [("shelve.open", "flag", "'c'"), ("=shelve.open", "flag='c'")],
    ),
]
