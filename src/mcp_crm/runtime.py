"""For a process that does one long job from here on: serving, importing."""

import gc


def settle() -> None:
    """What the process made so far stays for good, so the garbage collector stops scanning it: the libraries and
    (serving) the catalog's models and schemas are some 230,000 objects, and each full collection over them took
    ~180 ms - a pause for every call in flight, and a fifth of an import's time. `mcp-crm serve` starts with the
    collector off (starting makes objects to keep, not garbage); the little garbage that left is kept rather than
    spend 0.1-0.3 s of the start collecting it."""
    gc.freeze()
    gc.enable()
