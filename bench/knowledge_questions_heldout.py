"""Held-out questions for ``bench.knowledge_recall``: never used to choose anything.

Written after ``bench.knowledge_questions.DEV`` and before any lever was measured,
about other objects and values of the same corpus, in the same three kinds
(see that module for the answer format). Levers and their constants were chosen
on the development split only; this split is scored by the same code and only
its totals were looked at.
"""

from __future__ import annotations

from bench.knowledge_questions import Question

HELD_OUT: list[Question] = [
    # ---------------------------------------------------------------- plain
    ("plain", "return a list of paths matching a pathname pattern", [("=glob.glob",)]),
    ("plain", "fill a single paragraph of text, returning a new string", [("=textwrap.fill",)]),
    ("plain", "random integer in range including both end points", [("=random.randint",)]),
    ("plain", "return the floor of x as an Integral", [("=math.floor",)]),
    ("plain", "return the sample variance of data", [("=statistics.variance",)]),
    (
        "plain",
        "successive entries from an iterable as long as the predicate evaluates to true",
        [("=itertools.takewhile",)],
    ),
    ("plain", "convert a cmp= function into a key= function", [("=functools.cmp_to_key",)]),
    ("plain", "returns a new subclass of tuple with named fields", [("=collections.namedtuple",)]),
    ("plain", "transform a list into a heap, in-place", [("=heapq.heapify",)]),
    ("plain", "hash the contents of a file-like object", [("=hashlib.file_digest",)]),
    ("plain", "returns a bytes object containing compressed data", [("=zlib.compress",)]),
    (
        "plain",
        "convert named and numeric character references to unicode characters",
        [("=html.unescape",)],
    ),
    ("plain", "return a shell-escaped string from a split command", [("=shlex.join",)]),
    ("plain", "shallow copy operation on arbitrary Python objects", [("=copy.copy",)]),
    ("plain", "return a random text string in hexadecimal", [("=secrets.token_hex",)]),
    (
        "plain",
        "context manager for temporarily redirecting stdout to another file",
        [("=contextlib.redirect_stdout",)],
    ),
    (
        "plain",
        "parse a query given as a string argument into a dict",
        [("=urllib.parse.parse_qs",)],
    ),
    (
        "plain",
        "replace %xx escapes by their single-character equivalent",
        [("=urllib.parse.unquote",)],
    ),
    ("plain", "returns a date string as specified by RFC 2822", [("=email.utils.formatdate",)]),
    ("plain", "returns a year's calendar as a multi-line string", [("=calendar.calendar",)]),
    (
        "plain",
        "divide data into n continuous intervals with equal probability",
        [("=statistics.quantiles",)],
    ),
    ("plain", "compare two files", [("=filecmp.cmp",)]),
    ("plain", "read a .plist file from a bytes object", [("=plistlib.loads",)]),
    (
        "plain",
        "execute the coroutine and return the result, managing the event loop",
        [("=asyncio.run",)],
    ),
    ("plain", "return a logger with the specified name", [("=logging.getLogger",)]),
    ("plain", "return the text of the source code for an object", [("=inspect.getsource",)]),
    ("plain", "write a pickled representation of obj to the open file object", [("=pickle.dump",)]),
    (
        "plain",
        "parse a file from a string into a DOM document",
        [("=xml.dom.minidom.parseString",)],
    ),
    # ---------------------------------------------------------------- paraphrased
    (
        "para",
        "visit every subfolder below a starting point and list what each one contains",
        [("=os.walk",), ("=os.fwalk",)],
    ),
    (
        "para",
        "where does the program I would run by typing its name actually live",
        [("=shutil.which",)],
    ),
    ("para", "how much room is left on the drive holding this folder", [("=shutil.disk_usage",)]),
    (
        "para",
        "scratch file that other programs can open by its location and that disappears once closed",
        [("=tempfile.NamedTemporaryFile",)],
    ),
    ("para", "swap each regex hit inside a text for another piece of text", [("=re.sub",)]),
    (
        "para",
        "cut a long headline down to at most 40 characters with a marker showing something was dropped",  # noqa: E501
        [("=textwrap.shorten",)],
    ),
    (
        "para",
        "draw several picks, allowing repeats, where some options are more likely than others",
        [("=random.choices",)],
    ),
    (
        "para",
        "are two floats near enough to each other to be treated as the same",
        [("=math.isclose",)],
    ),
    ("para", "add up many decimals without losing precision to rounding", [("=math.fsum",)]),
    (
        "para",
        "the answer that shows up most often in my survey results",
        [("=statistics.mode",), ("=statistics.multimode",)],
    ),
    (
        "para",
        "pair up items from lists of unequal lengths, padding the short ones",
        [("=itertools.zip_longest",)],
    ),
    (
        "para",
        "walk through a list looking at each item together with the one right after it",
        [("=itertools.pairwise",)],
    ),
    (
        "para",
        "write only equality and less-than, and have the other comparisons generated for my class",
        [("=functools.total_ordering",)],
    ),
    (
        "para",
        "one function whose implementation is picked according to what kind of object it is given",
        [("=functools.singledispatch",)],
    ),
    (
        "para",
        "look names up in a stack of dictionaries, local overrides first and global defaults last",
        [("=collections.ChainMap",)],
    ),
    (
        "para",
        "position at which a value would go in an ordered list, before any equal entries",
        [("=bisect.bisect_left",)],
    ),
    ("para", "memory-hard stretching of a passphrase into secret material", [("=hashlib.scrypt",)]),
    (
        "para",
        "quick 32-bit value to detect corrupted transfers",
        [("=zlib.crc32",), ("=binascii.crc32",)],
    ),
    ("para", "make user-supplied text safe to show inside a web page", [("=html.escape",)]),
    (
        "para",
        "unique identifier for the header of an outgoing email",
        [("=email.utils.make_msgid",)],
    ),
    ("para", "temporarily work from another folder inside a with block", [("=contextlib.chdir",)]),
    (
        "para",
        "turn '10.0.0.0/8' into an object I can test membership against",
        [("=ipaddress.ip_network",)],
    ),
    (
        "para",
        "read the switches and options passed to my script from the terminal",
        [("=argparse.ArgumentParser",)],
    ),
    (
        "para",
        "read settings from an .ini style file with bracketed sections",
        [("=configparser.ConfigParser",), ("=configparser.RawConfigParser",)],
    ),
    (
        "para",
        "dump the current error's stack to stderr from inside an except block",
        [("=traceback.print_exc",)],
    ),
    (
        "para",
        "let at most five workers into a section of code at the same time",
        [("=threading.Semaphore",), ("=threading.BoundedSemaphore",)],
    ),
    (
        "para",
        "pass work items between async tasks, making the sender wait when it is full",
        [("=asyncio.Queue",)],
    ),
    (
        "para",
        "a clock that never goes backwards even if someone changes the system time",
        [("=time.monotonic",)],
    ),
    ("para", "measure which functions a statement spends its time in", [("=cProfile.run",)]),
    (
        "para",
        "stop my __repr__ from looping forever when an object contains itself",
        [("=reprlib.recursive_repr",)],
    ),
    # ---------------------------------------------------------------- exact values
    (
        "value",
        "default port for plain IMAP connections",
        [("| imaplib.IMAP4_PORT | 143 |",), ("=imaplib.IMAP4", "port=143")],
    ),
    ("value", "Which port is used for POP3 over SSL?", [("| poplib.POP3_SSL_PORT | 995 |",)]),
    (
        "value",
        "default port of the local mail transfer protocol client",
        [
            ("| smtplib.LMTP_PORT | 2003 |",),
            ("| smtplib.LMTP | port | 2003 |",),
            ("=smtplib.LMTP", "port=2003"),
        ],
    ),
    (
        "value",
        "Which port does the HTTP client library assume for secure connections?",
        [("http.client.HTTPS_PORT", "443")],
    ),
    (
        "value",
        "default compression level of bz2.open",
        [("| bz2.open | compresslevel | 9 |",), ("=bz2.open", "compresslevel=9")],
    ),
    (
        "value",
        "How many lines of context does unified_diff show by default?",
        [("| difflib.unified_diff | n | 3 |",), ("=difflib.unified_diff", "n=3")],
    ),
    (
        "value",
        "maximum number of suggestions get_close_matches returns unless told otherwise",
        [("| difflib.get_close_matches | n | 3 |",), ("=difflib.get_close_matches", "n=3")],
    ),
    (
        "value",
        "numeric level for the strongest zlib compression",
        [("| zlib.Z_BEST_COMPRESSION | 9 |",)],
    ),
    ("value", "largest window size in bits for zlib", [("| zlib.MAX_WBITS | 15 |",)]),
    ("value", "default compression preset of the xz module", [("| lzma.PRESET_DEFAULT | 6 |",)]),
    ("value", "smallest year number allowed in a date", [("| datetime.MINYEAR | 1 |",)]),
    ("value", "errno number for a missing file or directory", [("| ENOENT | 2 |",)]),
    ("value", "error number returned when permission is denied", [("| EACCES | 13 |",)]),
    (
        "value",
        "status code when the server is temporarily overloaded or down for maintenance",
        [("| 503 | Service Unavailable |",)],
    ),
    (
        "value",
        "response code for a resource that has been given a new permanent URI",
        [("| 301 | Moved Permanently |",)],
    ),
    (
        "value",
        "number of the signal that politely asks a process to terminate",
        [("| SIGTERM | 15 |",)],
    ),
    ("value", "signal number sent when you press Ctrl+C", [("| SIGINT | 2 |",)]),
    ("value", "media type for WebAssembly binaries", [("| .wasm | application/wasm |",)]),
    ("value", "mime type of comma separated values files", [("| .csv | text/csv |",)]),
    ("value", "longest line the FTP client accepts", [("| ftplib.MAXLINE | 8192 |",)]),
    (
        "value",
        "maximum number of names tempfile tries before giving up",
        [("| tempfile.TMP_MAX | 238328 |",)],
    ),
    (
        "value",
        "does plistlib sort dictionary keys by default when writing",
        [("| plistlib.dumps | sort_keys | True |",), ("=plistlib.dumps", "sort_keys=True")],
    ),
    (
        "value",
        "does filecmp.cmp only compare os.stat signatures by default",
        [("| filecmp.cmp | shallow | True |",), ("=filecmp.cmp", "shallow=True")],
    ),
    (
        "value",
        "which characters separate keys from values in ini files by default",
        [
            ("| configparser.ConfigParser | delimiters | ('=', ':') |",),
            ("=configparser.ConfigParser", "delimiters=('=', ':')"),
        ],
    ),
    (
        "value",
        "default prefix character for optional command line arguments",
        [
            ("| argparse.ArgumentParser | prefix_chars | '-' |",),
            ("=argparse.ArgumentParser", "prefix_chars='-'"),
        ],
    ),
    (
        "value",
        "how many times does timeit.repeat repeat the measurement by default",
        [("timeit.repeat", "repeat", "5"), ("=timeit.repeat", "repeat=5")],
    ),
    (
        "value",
        "default flag when opening a dbm database",
        [("dbm.open", "flag", "'r'"), ("=dbm.open", "flag='r'")],
    ),
]
