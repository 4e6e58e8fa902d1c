"""Offline tests of --shard K/N: every server in exactly one shard, the same split everywhere."""

import random

import pytest

from mailaudit.errors import ConfigError
from mailaudit.inventory import ServerEntry
from mailaudit.shard import parse_shard, select_shard

FLEET = [f"mx{i}.customer{i % 7}.example" for i in range(23)]


@pytest.mark.parametrize(("text", "expected"), [("1/1", (1, 1)), ("2/5", (2, 5)), (" 3 / 4 ", (3, 4))])
def test_shard_option_parses(text, expected):
    """K/N is read as shard K of N."""
    assert parse_shard(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("0/2", "K must be between 1 and N (2)"), ("3/2", "K must be between 1 and N (2)"),
    ("1/0", "N must be between 1 and 1000"), ("1/2000", "N must be between 1 and 1000"),
    ("1-2", "expected K/N"), ("", "expected K/N"), ("½/2", "expected K/N"),
])
def test_bad_shard_option_is_one_line(text, expected):
    """A malformed or impossible --shard is a ConfigError naming the option."""
    with pytest.raises(ConfigError) as info:
        parse_shard(text)
    assert str(info.value).startswith("--shard ") and expected in str(info.value)


@pytest.mark.parametrize("count", [0, 1, 2, 5, 23])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 30])
def test_every_server_is_in_exactly_one_shard_and_shards_are_balanced(count, n):
    """The shards' union is the fleet, without overlap; sizes differ by at most one."""
    servers = FLEET[:count]
    shards = [select_shard(servers, k, n) for k in range(1, n + 1)]
    merged = [s for shard in shards for s in shard]
    assert sorted(merged) == sorted(servers)
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1


def test_split_does_not_depend_on_order_or_case():
    """The same names in another order (or letter case) give the same shards: each machine agrees."""
    shuffled = FLEET[:]
    random.Random(7).shuffle(shuffled)
    for k in (1, 2, 3):
        assert set(select_shard(FLEET, k, 3)) == set(select_shard(shuffled, k, 3))
    upper = [name.upper() for name in FLEET]
    assert {s.lower() for s in select_shard(upper, 2, 3)} == set(select_shard(FLEET, 2, 3))


def test_split_is_fixed_for_known_names():
    """A known fleet splits the same way on every machine and in every release (sorted by name, dealt
    out in turn); the two lab servers land in different shards of two."""
    servers = ["mail.weak.test", "mail.hardened.test", "b.example", "A.example"]
    assert select_shard(servers, 1, 2) == ("mail.hardened.test", "A.example")
    assert select_shard(servers, 2, 2) == ("mail.weak.test", "b.example")


def test_shards_keep_the_given_order_and_work_on_inventory_entries():
    """A shard lists its servers in the inventory's order; entries are split by their server name."""
    entries = [ServerEntry(server=name) for name in ("z.example", "a.example", "m.example", "b.example")]
    assert [e.server for e in select_shard(entries, 1, 2)] == ["a.example", "m.example"]
    assert [e.server for e in select_shard(entries, 2, 2)] == ["z.example", "b.example"]
    with pytest.raises(ValueError):
        select_shard(entries, 3, 2)
