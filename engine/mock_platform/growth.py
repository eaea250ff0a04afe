"""Deterministic follower growth: the same account at the same slot always has the same stats."""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import TypedDict

DAY_S = 86_400
# Growth counts from here, so numbers stay plausible (2026-01-01T00:00:00Z).
EPOCH_S = 1_767_225_600


class Stats(TypedDict):
    id: str
    username: str
    followers: int
    following: int
    posts: int
    views: int


@lru_cache(maxsize=262_144)
def _traits(seed: int, account_id: str) -> tuple[int, int, int, int, int]:
    h = zlib.crc32(f"{seed}:{account_id}".encode())
    h2 = zlib.crc32(f"{account_id}:{seed}".encode())
    base = 500 + h % 250_000
    per_day = (h2 % 600) - 60  # some accounts shrink
    following = 50 + (h >> 8) % 1_500
    posts = 10 + (h2 >> 8) % 900
    views_per_follower = 5 + (h >> 16) % 40
    return base, per_day, following, posts, views_per_follower


def slot_of(now_s: float, slot_s: int) -> int:
    return int(now_s // slot_s)


def stats_at(seed: int, account_id: str, slot: int, slot_s: int) -> Stats:
    base, per_day, following, posts, vpf = _traits(seed, account_id)
    days = max(slot * slot_s - EPOCH_S, 0) / DAY_S
    # A small wobble per slot, so consecutive samples differ even for slow accounts.
    wobble = zlib.crc32(f"{account_id}:{slot}".encode()) % 7
    followers = max(0, base + int(per_day * days) + wobble)
    return {
        "id": account_id,
        "username": f"user_{account_id}",
        "followers": followers,
        "following": following + wobble,
        "posts": posts + int(days) // 3,
        "views": followers * vpf,
    }


def etag_of(seed: int, account_id: str, slot: int) -> str:
    return f'"{zlib.crc32(f"{seed}:{account_id}:{slot}".encode()):08x}"'


def is_gone(seed: int, account_id: str, gone_rate: float) -> bool:
    if gone_rate <= 0:
        return False
    return zlib.crc32(f"gone:{seed}:{account_id}".encode()) % 10_000 < gone_rate * 10_000
