"""The one module that talks to Redis: one round trip per push, whatever the batch size.

A Lua script receives every entry of the request and, atomically and in order, skips entries
whose dedupe id was published within the dedupe window and XADDs the rest, then trims each
stream it added to by MINID.
An id stays claimed only if its XADD succeeded, so a failing script never hides an entry that
was not published. With a durability setting, a WAIT or WAITAOF is
pipelined behind the script: still one round trip.
"""
from __future__ import annotations

import itertools
import logging
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import hiredis
import msgpack
import redis
import redis._parsers.base
from hiredis import pack_command as _pack  # what redis-py's packer calls, minus its wrapping
from redis.cluster import RedisCluster

Entry = tuple[str, str, Mapping[str, "str | bytes"]]  # (kind, dedupe id, fields)

log = logging.getLogger("receiver")

# RECEIVER_REDIS_DURABILITY: what "in Redis" means before the vendor gets its ack.
DURABILITY = {
    "memory": None,                    # the script ran (Redis' own persistence settings apply)
    "aof": ("WAITAOF", 1, 0),          # fsynced to the local AOF (Redis >= 7.2, Valkey)
    "replica": ("WAIT", 1),            # copied to at least one replica
    "aof+replica": ("WAITAOF", 1, 1),  # fsynced locally and on a replica
}


TRIM_EVERY = 1.0  # seconds between two trims of a stream by one publisher


class NotDurable(redis.RedisError):
    """The script ran but the durability asked for was not confirmed in time."""


# KEYS: the streams, then the dedupe sets to check, then those to add to, then those to retire.
# ARGV: MINID ('' for no trimming), the batch, the four key counts, each set-to-add's expiry
# (unix ms). The batch is one string of MessagePack values (old-spec raw strings, as Redis'
# cmsgpack reads them), one after the other: the list of shapes (a shape is the list of field
# names some entries share), the list of the entries' dedupe ids, the list of long values, the
# list of linked shapes (those of dead letters), then for each entry its stream key index,
# dedupe id index and shape index, and its values, one per name of its shape; in a linked
# shape, a number k for a value stands for the k-th long value (see LONG). One argument
# instead of thousands keeps the client-side packing cheap for 500-record batches, and each
# shape's names are sent once. (The ids were arguments of their own until hiredis'
# pack_command was seen to take 0.27 us an argument: 135 us for a 500-record push.)
# Dedupe ids live in sets, one per slice of the window (see Publisher._windows), not in a key
# per id: one SMISMEMBER per set and push and one SADD per push, where a `SET NX PX` per id
# cost Redis about 4 us an entry (a key and an expiry each): 14.4 -> 11.3 us of Redis CPU per
# entry of a 500-record push (the two scripts in turns in one process, same entries).
# The script reads each entry off the batch with cmsgpack.unpack_limit, which leaves the
# values on the Lua stack; they go to XADD as the arguments of a function made for that many
# fields, which puts the shape's names between them. No tables per entry (cmsgpack.unpack built
# two, growing each one element at a time), no args table to fill, and the batch is never all
# alive at once for Lua's GC to mark: 65 -> 47 thousand instructions of Redis per 11-field entry
# (callgrind, Redis 7.0), Redis CPU ~14 -> ~11 us per entry (same run; same entries, replies).
# Returns one string with a character per entry: '1' added, '0' a duplicate. (The 500 stream
# ids it returned before cost Redis a reply and the client a bytes object per entry, and
# nobody read them.)
_XADD_ARITY = 32  # field counts with a function of their own; more take the generic one
# A dead letter's value this long (its push's body, its query) travels once per push, however
# many letters hold it. Each Lua string Redis makes is hashed byte by byte (Redis' Lua hashes
# every byte, ~1.4 ns a byte here), and a value in the batch is made twice: with the batch, and
# when unpacked. The 5 letters of a 500-record push with 1% bad records held its 20 KB body 5
# times: 200 KB hashed, ~280 us of Redis per push.
LONG = 1024


def _xadd_functions(count: int) -> str:
    """Lua: `local function arity(n)`, which makes the function for n fields (nil past
    `count`). Made when a push first needs it: creating all 32 closures on every call cost a
    single-record push ~4 us of Redis."""
    lines = ["local function arity(n)"]
    for n in range(1, count + 1):
        values = ", ".join(f"v{i}" for i in range(1, n + 1))
        pairs = ", ".join(f"names[{i}], v{i}" for i in range(1, n + 1))
        lines.append(f"  if n == {n} then return function(at, {values}) "
                     f"return at, pcall('XADD', stream, '*', {pairs}) end end")
    lines.append("end")
    return "\n".join(lines)


PUBLISH_LUA = """
local minid, batch = ARGV[1], ARGV[2]
local nstreams, nchecks, nmarks = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local nretire = tonumber(ARGV[6])
local at, shapes = cmsgpack.unpack_one(batch)
local ids, long, linked  -- ids[k] is the k-th entry's dedupe id; long[k] a shared long value
at, ids = cmsgpack.unpack_one(batch, at)
at, long = cmsgpack.unpack_one(batch, at)
at, linked = cmsgpack.unpack_one(batch, at)  -- the shapes whose values may name a long one
local refers = {}
for _, shape in ipairs(linked) do refers[shape] = true end
local call, pcall, unpack_limit = redis.call, redis.pcall, cmsgpack.unpack_limit
local CHUNK = 1000  -- ids per SMISMEMBER / SADD: unpack() puts them all on the Lua stack
-- xadd[n](next offset, v1, ..., vn) -> next offset, XADD's reply (or error), for `stream` and
-- the shape `names`
local stream, names
local xadd = {}
""" + _xadd_functions(_XADD_ARITY) + """
-- The generic one, for any field count and for linked shapes: a value that is a number
-- stands for long[number] (no other value is a number).
local function xadd_any(at, ...)
  local args, values = {}, {...}
  for i = 1, #names do
    local value = values[i]
    if type(value) == 'number' then value = long[value] end
    args[2 * i - 1] = names[i]; args[2 * i] = value
  end
  return at, pcall('XADD', stream, '*', unpack(args, 1, 2 * #names))
end
-- The ids published within the window: a duplicate is one of them, or one added earlier in
-- this push.
local taken = {}
for c = nstreams + 1, nstreams + nchecks do
  for a = 1, #ids, CHUNK do
    local r = call('SMISMEMBER', KEYS[c], unpack(ids, a, math.min(a + CHUNK - 1, #ids)))
    for i = 1, #r do if r[i] == 1 then taken[ids[a + i - 1]] = true end end
  end
end
local new = {}
-- Claim what was published, in every set to add to: run before returning, error or not.
local function claim()
  if #new == 0 then return end
  for m = 1, nmarks do
    local set = KEYS[nstreams + nchecks + m]
    for a = 1, #new, CHUNK do call('SADD', set, unpack(new, a, math.min(a + CHUNK - 1, #new))) end
    call('PEXPIREAT', set, ARGV[6 + m])
  end
end
local out, added, n = {}, {}, 0
while at >= 0 do
  local s, k, shape
  at, s, k, shape = unpack_limit(batch, 3, at)
  n = n + 1
  names = shapes[shape]
  local id = ids[k]
  if taken[id] then
    out[n] = '0'
    at = unpack_limit(batch, #names, at)  -- past its values
  else
    stream = KEYS[s]
    local reply
    local f = xadd[#names]
    if refers[shape] then f = xadd_any
    elseif not f then f = arity(#names) or xadd_any; xadd[#names] = f end
    at, reply = f(unpack_limit(batch, #names, at))
    if type(reply) == 'table' and reply.err then
      -- Not published, so not claimed; fail the push (the entries before this one are
      -- published and claimed, so the retry from the spool skips them).
      claim()
      return redis.error_reply(reply.err)
    end
    taken[id] = true
    new[#new + 1] = id
    out[n] = '1'
    added[stream] = true
  end
end
claim()
-- A set no longer checked is freed off Redis' main thread (UNLINK), not left to expire: an
-- expiring key is freed in place (unless lazyfree-lazy-expire), and a set of 3 million ids
-- froze Redis 7.0 for 1.7 s that way, against 3 ms for an UNLINK.
for r = 1, nretire do call('UNLINK', KEYS[nstreams + nchecks + nmarks + r]) end
-- Trim once per stream and push, not per XADD: MINID on every XADD cost 1.4 us of Redis time
-- per entry (4.1 against 2.7 for an 11-field XADD). The publisher asks for it (a MINID) at most
-- once a second per stream.
if minid ~= '' then
  for s in pairs(added) do call('XTRIM', s, 'MINID', '~', minid) end
end
return table.concat(out)
"""


# Until 2026-12-02 (1a4cd8b) each dedupe id was a string key of its own, `<prefix>:seen:<id>`
# (`SET NX PX`), and nothing reads such keys now. So that an upgrade does not publish again
# what the old version published within the window, a publisher adopts them before its first
# publish or `known`: each page of SCAN's string keys under `<prefix>:seen:` goes into the
# current slice's set of every window and is then deleted, in one script per page. Ids
# adopted this way stay duplicates for at least a window from the upgrade. Once all are, the key
# `<prefix>:seen-adopted` says so, and later publishers only check that it exists.
# KEYS: the sets to add to, then the page's keys. ARGV: how many sets, the length of the
# keys' common prefix, then each set's expiry (as the publish script sets it).
ADOPT_LUA = """
local nsets, skip = tonumber(ARGV[1]), tonumber(ARGV[2])
local keys, ids, listed = {}, {}, {}
for i = nsets + 1, #KEYS do
  -- Not deleted since SCAN listed it, and not listed twice in this page (SCAN may repeat).
  if not listed[KEYS[i]] and redis.call('TYPE', KEYS[i]).ok == 'string' then
    listed[KEYS[i]] = true
    keys[#keys + 1] = KEYS[i]
    ids[#ids + 1] = string.sub(KEYS[i], skip + 1)
  end
end
if #ids == 0 then return 0 end
-- Added, then deleted: Redis does not undo what a failing script did before its error.
for m = 1, nsets do
  redis.call('SADD', KEYS[m], unpack(ids))
  redis.call('PEXPIREAT', KEYS[m], ARGV[2 + m])
end
redis.call('DEL', unpack(keys))
return #ids
"""
ADOPT_PAGE = 1000  # keys per SCAN and per script call (unpack() puts a page on Lua's stack)


@dataclass(frozen=True)
class Streams:
    """Stream and key names under a prefix (`sms` → `sms:dlr`, `sms:mo`, `sms:deadletter`)."""

    prefix: str = "sms"

    def stream(self, kind: str) -> str:
        return f"{self.prefix}:{kind}"

    def seen(self, width_ms: int, index: int) -> str:
        """The dedupe set of ids published in slice `index` of a window cut in `width_ms`."""
        return f"{self.prefix}:seen:{width_ms}:{index}"

    @property
    def old_seen(self) -> str:
        """What the key-per-id layout's claim keys start with, `<prefix>:seen:` (see ADOPT_LUA)."""
        return f"{self.prefix}:seen:"

    @property
    def adopted(self) -> str:
        """The key that says the key-per-id layout's claims were adopted (see ADOPT_LUA)."""
        return f"{self.prefix}:seen-adopted"

    @property
    def all(self) -> tuple[str, str, str]:
        return self.stream("dlr"), self.stream("mo"), self.stream("deadletter")


def connect(url: str, *, cluster: bool = False, timeout: float = 5.0) -> redis.Redis:
    """A client for a Redis (or, with `cluster`, Redis Cluster) URL; connects lazily."""
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
               "health_check_interval": 30}
    if cluster:
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


class Publisher:
    """Publishes the entries of one push in one script call."""

    def __init__(self, client: redis.Redis, streams: Streams, *, dedupe_ttl: float,
                 retention: float | None, durability: str = "memory",
                 wait_ms: int = 1000, also_dedupe: Sequence[float] = ()) -> None:
        """`dedupe_ttl`: seconds an id stays a duplicate. `also_dedupe`: other windows (the
        replayer's) to check and claim in as well, so each sees what the other published."""
        self.client = client
        self.streams = streams
        self.dedupe_ms = round(dedupe_ttl * 1000)
        # Each window is cut into slices of half its length, one set per slice: an id claimed
        # at t, in slice i, is checked until slice i + 3 begins, (i + 3) * width >= t + window,
        # so a duplicate within the window (and up to half a window more) is always found in
        # one of the three latest slices. Then the set is retired (UNLINK); its expiry, a slice
        # later, is only for when no push comes by to retire it.
        self._windows = [(-(-ms // 2), ms) for ms in dict.fromkeys(
            [self.dedupe_ms, *(round(ttl * 1000) for ttl in also_dedupe)]) if ms > 0]
        self._retired: set[str] = set()  # the latest sets to retire, once retired
        self._made: tuple = (None, None)  # (slices, what _sets answers for them; not to change)
        self.retention_ms = int(retention * 1000) if retention else 0
        self._trim_due: dict[str, float] = {}  # stream kind -> time.monotonic() of its next trim
        self.wait = DURABILITY[durability]
        self.wait_ms = wait_ms
        self._script = client.register_script(PUBLISH_LUA)
        self._adopt = client.register_script(ADOPT_LUA)
        self._adopted = False  # the old layout's keys (see ADOPT_LUA); once per publisher
        self._adopting = threading.Lock()
        # A plain Redis gets the lean path (_Line); a cluster client routes the script itself.
        self._line = None if isinstance(client, RedisCluster) else _Line(client)

    def publish(self, entries: Sequence[Entry]) -> list[bool]:
        """XADD `(kind, dedupe id, fields)` entries (str or bytes values), skipping ids seen
        in the dedupe window.

        Returns, per entry, True when it was added and False when it was a duplicate.
        Raises redis.RedisError when Redis did not take them, or NotDurable when it did not
        confirm the durability asked for: either way the caller must not ack from Redis alone.
        """
        if not entries:
            return []
        if not self._adopted:
            self.adopt_old_claims()
        # KEYS: the (at most three) streams, the dedupe sets to check, those to claim in, and
        # those to retire that this publisher has not retired yet (once per slice, not per push).
        index = {kind: n for n, kind in enumerate(dict.fromkeys([e[0] for e in entries]), 1)}
        keys = [self.streams.stream(kind) for kind in index]
        now_ms = int(time.time() * 1000)
        checks, claims, expiries, retiring = self._sets(now_ms)
        retire = [key for key in retiring if key not in self._retired]
        keys += checks + claims + retire
        minid = ""
        if self.retention_ms:
            # Trim a stream at most once a second (a single-record push paid an XTRIM each):
            # MINID is approximate anyway, and retention is days.
            clock = time.monotonic()
            if any(self._trim_due.get(kind, 0.0) <= clock for kind in index):
                self._trim_due.update(dict.fromkeys(index, clock + TRIM_EVERY))
                minid = f"{now_ms - self.retention_ms}-0"
        shapes: dict[tuple[str, ...], int] = {}  # field names -> shape index (from 1)
        # The batch's values: the four lists (filled in below), then per entry its stream
        # index, dedupe id index, shape index and values.
        items: list = [None, None, None, None]
        long: dict[str | bytes, int] = {}  # a dead letter's long value -> its index (from 1)
        linked: set[int] = set()  # the shapes of dead letters
        for n, (kind, _, fields) in enumerate(entries, 1):
            names = tuple(fields)
            shape = shapes.get(names)
            if shape is None:
                shape = shapes[names] = len(shapes) + 1
            items += (index[kind], n, shape)
            if kind == "deadletter":
                # The letters of a push each hold its whole body (and query): each long value
                # travels once, the letters name it by its index.
                linked.add(shape)
                items += [long.setdefault(value, len(long) + 1) if len(value) >= LONG else value
                          for value in fields.values()]
            else:
                items += fields.values()
        items[:4] = (list(shapes), [dedupe for _, dedupe, _ in entries], list(long),
                     sorted(linked))
        batch = _sequence(items)  # one packing, not five packed parts joined
        args = [minid, batch, len(index), len(checks), len(claims), len(retire), *expiries]
        if self._line is not None:
            script = ("EVALSHA", self._script.sha, len(keys), *keys, *args)
            wait = () if self.wait is None else ((*self.wait, self.wait_ms),)
            results, *confirmed = self._line.call(script, *wait, load=("SCRIPT", "LOAD",
                                                                       PUBLISH_LUA))
            confirmed = confirmed[0] if confirmed else None
        elif self.wait is None:
            results, confirmed = self._script(keys=keys, args=args), None
        else:
            pipe = self.client.pipeline(transaction=False)
            self._script(keys=keys, args=args, client=pipe)
            pipe.execute_command(*self.wait, self.wait_ms)
            results, confirmed = pipe.execute()
        if retire:  # the script ran to its end: the sets are gone
            self._retired = set(retiring)
        if self.wait is None:
            return _flags(results)
        needed = self.wait[1:]
        got = confirmed if isinstance(confirmed, list) else [confirmed]
        if any(int(have) < want for have, want in zip(got, needed)):
            raise NotDurable(f"{self.wait[0]} confirmed {got}, needed {list(needed)}")
        return _flags(results)

    def _sets(self, now_ms: int) -> tuple[list[str], list[str], list[int], list[str]]:
        """At `now_ms`: the dedupe sets to check, those to claim in, their expiries, and the
        sets to retire (no longer checked). The same until a slice ends (hours): kept, not
        remade per push (3.9 us of a single push's ~18 us of publish)."""
        slices = tuple([now_ms // width for width, _ in self._windows])
        made = self._made
        if made[0] != slices:
            made = self._made = (slices, self._make_sets(slices))
        return made[1]

    def _make_sets(self, slices: tuple[int, ...]
                   ) -> tuple[list[str], list[str], list[int], list[str]]:
        checks, claims, expiries, retire = [], [], [], []
        for (width, _), slice_ in zip(self._windows, slices):
            checks += [self.streams.seen(width, slice_ - back) for back in range(3)]
            claims.append(checks[-3])
            expiries.append((slice_ + 4) * width)  # a slice after it is retired
            retire.append(self.streams.seen(width, slice_ - 3))
        return checks, claims, expiries, retire

    def adopt_old_claims(self) -> int:
        """Move the claims of the key-per-id layout into the current sets (see ADOPT_LUA),
        once per publisher; returns how many. Raises redis.RedisError (the next call tries
        again): `publish` does not go on without it, so the push is spooled, not duplicated."""
        with self._adopting:
            if self._adopted:
                return 0
            _, claims, expiries, _ = self._sets(int(time.time() * 1000))
            # Nothing to do without a dedupe window (nothing reads claims, old or new), nor
            # once done for the prefix (no SCAN of a large shared keyspace on every start).
            adopted = 0
            if claims and not self.client.exists(self.streams.adopted):
                adopted = self._move_old_claims(claims, expiries)
            self._adopted = True
        if adopted:
            log.info("adopted %d dedupe ids of the key-per-id layout (%s<id>) into %s",
                     adopted, self.streams.old_seen, ", ".join(claims))
        return adopted

    def _move_old_claims(self, claims: list[str], expiries: list[int]) -> int:
        """SCAN the old claim keys, one ADOPT_LUA per page, then set the marker."""
        head = self.streams.old_seen
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in head) + "*"
        args = [len(claims), len(head.encode()), *expiries]
        keys = self.client.scan_iter(match=pattern, count=ADOPT_PAGE, _type="string")
        adopted = 0
        while page := list(itertools.islice(keys, ADOPT_PAGE)):
            adopted += self._adopt(keys=[*claims, *page], args=args)
        self.client.set(self.streams.adopted, "1")  # no expiry: the old layout is gone for good
        return adopted

    def known(self, ids: Sequence[str]) -> list[bool]:
        """Per id, whether it was published within the window (what `publish` would skip)."""
        if not self._adopted:
            self.adopt_old_claims()
        checks = self._sets(int(time.time() * 1000))[0]
        if not ids or not checks:
            return [False] * len(ids)
        pipe = self.client.pipeline(transaction=False)
        for key in checks:
            pipe.smismember(key, list(ids))
        return [any(found) for found in zip(*pipe.execute())]


class _Line:
    """One connection per thread, used directly: commands packed into one write, replies read
    back by a hiredis reader of its own. redis-py's execute_command spends ~40 us of Python per
    call on pool checkout, retry and observability wrappers: a single push's publish took 119 us
    of CPU through it, 53 us this way (a PING: 65 against 14 us).

    redis-py connects (credentials, database, TLS, socket options); the line then does its
    own I/O. A plain socket is made blocking with the timeout set in the kernel (SO_RCVTIMEO,
    SO_SNDTIMEO): with a Python-level timeout every send and every receive is a poll() and
    then the call, each releasing and retaking the GIL. Under gunicorn (2 gthread workers x 4)
    a bare WSGI app doing one XADD went from 0.67 to 0.77 x hello's requests/s that way.
    A TLS socket keeps its Python-level timeout. Failures are the caller's to handle (the
    view spools the push).
    """

    def __init__(self, client: redis.Redis) -> None:
        pool = client.connection_pool
        self._make = lambda: pool.connection_class(**pool.connection_kwargs)
        self._timeout = pool.connection_kwargs.get("socket_timeout")
        self._local = threading.local()

    def _state(self) -> threading.local:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # new thread, or a forked child
            local.pid, local.connection, local.sock = os.getpid(), self._make(), None
        return local

    def _open(self, local: threading.local) -> socket.socket:
        connection = local.connection
        connection.connect()  # handshake (AUTH, SELECT, ...) through redis-py
        sock = connection._sock
        if type(sock) is socket.socket and self._timeout:
            sock.settimeout(None)
            seconds = int(self._timeout)
            value = struct.pack("ll", seconds, int((self._timeout - seconds) * 1e6))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
        # A reply that breaks the protocol raises redis-py's InvalidResponse, a RedisError the
        # view spools on, like a dead connection.
        local.sock = sock
        local.reader = hiredis.Reader(protocolError=redis.exceptions.InvalidResponse)
        local.buffer = bytearray(65536)
        return sock

    def _close(self, local: threading.local) -> None:
        local.sock = None
        local.connection.disconnect()

    @staticmethod
    def _reply(local: threading.local) -> Any:
        reader, sock, buffer = local.reader, local.sock, local.buffer
        reply = reader.gets()
        while reply is False:
            try:
                size = sock.recv_into(buffer)
            except (TimeoutError, BlockingIOError):  # Python's timeout, or the kernel's
                raise redis.TimeoutError("Timeout reading from Redis") from None
            if not size:
                raise redis.ConnectionError("Redis closed the connection")
            reader.feed(buffer, 0, size)
            reply = reader.gets()
        return reply

    def call(self, *commands: tuple, load: tuple | None = None, retry: bool = True) -> list:
        """Send the commands in one write and return their replies. When the first reply is
        NOSCRIPT (a restarted or flushed Redis), send `load` and the commands once more; when
        the connection turns out dead (Redis restarted since), reconnect and send them once
        more (the script is idempotent: its dedupe skips what a first run published). A
        timeout is not retried: the caller spools instead of waiting twice."""
        local = self._state()
        try:
            sock = local.sock or self._open(local)
            try:
                sock.sendall(b"".join(map(_pack, commands)))
            except (TimeoutError, BlockingIOError):
                raise redis.TimeoutError("Timeout writing to Redis") from None
            replies = [self._reply(local) for _ in commands]
        except redis.TimeoutError:
            self._close(local)  # a reply may still come: start afresh
            raise
        except (redis.ConnectionError, OSError) as problem:
            self._close(local)
            if not retry:
                if isinstance(problem, redis.ConnectionError):
                    raise
                raise redis.ConnectionError(f"Redis connection failed: {problem}") from problem
            return self.call(*commands, load=load, retry=False)
        except BaseException:
            self._close(local)
            raise
        errors = [reply for reply in replies if isinstance(reply, hiredis.ReplyError)]
        if errors:
            first = str(replies[0]) if replies[0] is errors[0] else ""
            if load is not None and first.startswith("NOSCRIPT"):
                self.call(load, retry=retry)
                return self.call(*commands, retry=retry)
            # The replies are all read: the connection stays in step.
            raise _PARSER.parse_error(str(errors[0]))
        return replies


_PARSER = redis._parsers.base.BaseParser  # redis-py's error reply -> exception class mapping


def _sequence(items: list) -> bytes:
    """The items as consecutive MessagePack values: an array's packing less its header."""
    n = len(items)
    return msgpack.packb(items, use_bin_type=False)[1 if n < 16 else 3 if n < 65536 else 5:]


def _flags(reply: bytes | str) -> list[bool]:
    """The script's reply ('1' added, '0' duplicate, per entry) as booleans."""
    text = reply.decode() if isinstance(reply, bytes) else reply
    return [flag == "1" for flag in text]

