"""The function's logic, kept free of WebAssembly so that plain ``python3`` can test it
(``python3 -m unittest``, see test_greeting.py). app.py imports it into the component."""

from urllib.parse import parse_qs, urlsplit


def name_from(path_with_query):
    """The ``name`` query parameter of a request target such as ``/?name=Ada``, decoded
    (``Ada%20L`` and ``Ada+L`` are ``Ada L``); ``""`` when there is none."""
    query = urlsplit(path_with_query or "/").query
    return parse_qs(query).get("name", [""])[0]


def greeting(name):
    """``Hello, NAME!`` with a newline; ``world`` when the name is missing or blank."""
    name = (name or "").strip()
    return "Hello, %s!\n" % (name or "world")
