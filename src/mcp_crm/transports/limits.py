"""A per-credential rate limit for HTTP: a token bucket per Authorization header (or client address when
there is none), answering 429 with Retry-After when it runs dry. Kept per process: behind a load balancer
each replica allows the limit on its own."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_TRACKED = 10_000  # buckets kept; the least recently used go first


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimit:
    def __init__(self, app: ASGIApp, per_minute: int, burst: int | None = None) -> None:
        self.app = app
        self.rate = per_minute / 60.0  # tokens per second
        self.capacity = float(burst or max(1, per_minute // 6))  # up to 10 s worth at once
        self.buckets: dict[str, Bucket] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        wait = self._take(self._who(scope))
        if wait > 0:
            response = JSONResponse(
                {"error": "rate_limited", "error_description": f"Too many requests; retry in {math.ceil(wait)} s."},
                status_code=429,
                headers={"Retry-After": str(math.ceil(wait))},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _who(scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hashlib.sha256(value).hexdigest()  # the credential, never kept in the clear
        client = scope.get("client")
        return f"address:{client[0] if client else '?'}"

    def _take(self, who: str) -> float:
        """Seconds to wait before a request from `who` may pass; 0 lets this one through."""
        now = time.monotonic()
        bucket = self.buckets.pop(who, None) or Bucket(tokens=self.capacity, updated=now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self.buckets[who] = bucket  # re-inserted: the dict's order is least recently used first
        if len(self.buckets) > MAX_TRACKED:
            del self.buckets[next(iter(self.buckets))]
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate
