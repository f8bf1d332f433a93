"""Time-ordered string ids (UUIDv7 layout), so keyset pagination follows creation order."""

import os
import random
import threading
import time
import uuid
from datetime import datetime

# Random bits from a generator seeded by the OS (and reseeded in a forked child), not a system call per id:
# ids must not collide, they need not be unguessable.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def new_id() -> str:
    """A UUIDv7: 48-bit millisecond clock, then a 12-bit counter that keeps ids from one process
    strictly increasing within a millisecond, then 62 random bits."""
    global _last_ms, _seq
    with _lock:
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            _last_ms, _seq = now, int.from_bytes(os.urandom(2), "big") & 0x3FF
        else:
            _seq += 1
            if _seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms, _seq = _last_ms + 1, 0
        ms, seq = _last_ms, _seq
        rand = _random.getrandbits(62)  # under the lock: a Random instance is not safe to share between threads
    h = f"{(ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def id_at(moment: datetime) -> str:
    """The smallest id of that millisecond: every id made before it sorts lower."""
    return str(uuid.UUID(int=int(moment.timestamp() * 1000) << 80))
