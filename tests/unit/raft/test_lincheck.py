"""The linearizability checker accepts linearizable histories and rejects the others."""

from __future__ import annotations

import random

from shoal.testing.kvmodel import APPEND, GET, KV_MODEL, PUT, KVOp
from shoal.testing.lincheck import Model, Operation, check, check_part

Op = Operation[KVOp, str]


def put(client: int, key: str, value: str, call: int, ret: int | None) -> Op:
    return Operation(client, KVOp(PUT, key, value), call, ret, "ok" if ret is not None else None)


def app(client: int, key: str, value: str, call: int, ret: int | None) -> Op:
    return Operation(client, KVOp(APPEND, key, value), call, ret, "ok" if ret is not None else None)


def get(client: int, key: str, out: str, call: int, ret: int) -> Op:
    return Operation(client, KVOp(GET, key), call, ret, out)


def test_sequential_history_is_linearizable() -> None:
    h = [put(1, "x", "a", 0, 1), get(2, "x", "a", 2, 3), app(1, "x", "b", 4, 5), get(2, "x", "ab", 6, 7)]
    assert check(KV_MODEL, h).ok


def test_stale_read_after_completed_write_is_rejected() -> None:
    h = [put(1, "x", "a", 0, 1), put(1, "x", "b", 2, 3), get(2, "x", "a", 4, 5)]
    result = check(KV_MODEL, h)
    assert not result.ok
    assert {op.input.key for op in result.failing_part} == {"x"}


def test_concurrent_write_may_be_seen_or_not() -> None:
    for seen in ("a", "b"):
        h = [put(1, "x", "a", 0, 1), put(2, "x", "b", 2, 6), get(3, "x", seen, 3, 4)]
        assert check(KV_MODEL, h).ok


def test_reads_must_agree_on_an_order() -> None:
    # Two concurrent writes; one reader sees a then b, another sees b then a: impossible.
    h = [
        put(1, "x", "a", 0, 10),
        put(2, "x", "b", 0, 10),
        get(3, "x", "a", 1, 2),
        get(3, "x", "b", 3, 4),
        get(4, "x", "b", 1, 2),
        get(4, "x", "a", 3, 4),
    ]
    assert not check(KV_MODEL, h).ok


def test_read_of_a_value_never_written_is_rejected() -> None:
    assert not check(KV_MODEL, [put(1, "x", "a", 0, 1), get(2, "x", "zz", 2, 3)]).ok


def test_read_from_the_future_is_rejected() -> None:
    # The read completed before the write was even invoked.
    assert not check(KV_MODEL, [get(2, "x", "a", 0, 1), put(1, "x", "a", 2, 3)]).ok


def test_unknown_outcome_may_have_happened_or_not() -> None:
    took_effect = [put(1, "x", "a", 0, None), get(2, "x", "a", 5, 6)]
    lost = [put(1, "x", "a", 0, None), get(2, "x", "", 5, 6)]
    assert check(KV_MODEL, took_effect).ok
    assert check(KV_MODEL, lost).ok
    # ... but it cannot take effect before it was invoked.
    early = [get(2, "x", "a", 0, 1), put(1, "x", "a", 5, None)]
    assert not check(KV_MODEL, early).ok


def test_unknown_outcome_takes_effect_at_most_once() -> None:
    h = [app(1, "x", "a", 0, None), get(2, "x", "a", 1, 2), get(2, "x", "aa", 3, 4)]
    assert not check(KV_MODEL, h).ok


def test_lost_append_is_rejected() -> None:
    h = [app(1, "x", "a", 0, 1), app(2, "x", "b", 0, 1), get(3, "x", "a", 2, 3)]
    assert not check(KV_MODEL, h).ok


def test_keys_are_checked_independently() -> None:
    h = [put(1, "x", "a", 0, 1), put(1, "y", "b", 2, 3), get(2, "y", "b", 4, 5), get(2, "x", "a", 6, 7)]
    assert check(KV_MODEL, h).ok
    bad = [*h, get(3, "y", "", 8, 9)]
    assert not check(KV_MODEL, bad).ok


def test_register_model_without_partition() -> None:
    register: Model[int, tuple[str, int], int] = Model(init=0, step=lambda s, i: (i[1], 0) if i[0] == "w" else (s, s))
    ok = [Operation(1, ("w", 1), 0, 3, 0), Operation(2, ("r", 0), 1, 2, 1)]
    assert check_part(register, ok)
    bad = [Operation(1, ("w", 1), 0, 1, 0), Operation(2, ("r", 0), 2, 3, 0)]
    assert not check_part(register, bad)


def simulate_linearizable_history(rng: random.Random, n_ops: int) -> list[Op]:
    """Ops that really execute atomically at a random point inside their interval."""
    value = ""
    ops: list[Op] = []
    t = 0
    for i in range(n_ops):
        kind = rng.choice([PUT, APPEND, GET])
        call = t + rng.randint(0, 3)
        effect = call + rng.randint(0, 3)
        t = effect
        if kind == PUT:
            value = str(i)
            out = "ok"
        elif kind == APPEND:
            value += str(i)
            out = "ok"
        else:
            out = value
        ret = effect + rng.randint(0, 5)
        ops.append(Operation(i % 4, KVOp(kind, "k", str(i) if kind != GET else ""), call, ret, out))
    return ops


def test_randomized_linearizable_histories_are_accepted_and_corruptions_mostly_caught() -> None:
    rng = random.Random(3)
    caught = 0
    for _ in range(200):
        h = simulate_linearizable_history(rng, 12)
        assert check(KV_MODEL, h).ok
        reads = [i for i, op in enumerate(h) if op.input.kind == GET]
        if not reads:
            continue
        i = rng.choice(reads)
        h[i] = Operation(h[i].client, h[i].input, h[i].call, h[i].ret, "never-written")
        assert not check(KV_MODEL, h).ok
        caught += 1
    assert caught > 100


def brute_force_linearizable(history: list[Op]) -> bool:
    """Try every order (and every subset of unknown-outcome ops): the definition itself."""
    from itertools import permutations

    known = [op for op in history if op.ret is not None]
    unknown = [op for op in history if op.ret is None]
    for mask in range(1 << len(unknown)):
        chosen = known + [op for i, op in enumerate(unknown) if mask >> i & 1]
        for order in permutations(chosen):
            # Real time: an op that returned before another was invoked must come first.
            ok = all(not (b.ret is not None and b.ret < a.call) for i, a in enumerate(order) for b in order[i + 1 :])
            if not ok:
                continue
            value = ""
            for op in order:
                value, out = KV_MODEL.step(value, op.input)
                if op.ret is not None and out != op.output:
                    break
            else:
                return True
    return False


def test_checker_agrees_with_brute_force_on_small_random_histories() -> None:
    rng = random.Random(11)
    outcomes = {True: 0, False: 0}
    for _ in range(400):
        n = rng.randint(1, 5)
        history: list[Op] = []
        for i in range(n):
            call = rng.randint(0, 8)
            ret = None if rng.random() < 0.2 else call + rng.randint(1, 4)
            kind = rng.choice([PUT, APPEND, GET])
            if kind == GET:
                out = rng.choice(["", "a", "b", "ab", "ba"])
                history.append(Operation(i, KVOp(GET, "k"), call, ret if ret is not None else call + 1, out))
            else:
                value = rng.choice(["a", "b"])
                history.append(Operation(i, KVOp(kind, "k", value), call, ret, "ok" if ret is not None else None))
        expected = brute_force_linearizable(history)
        assert check(KV_MODEL, history).ok is expected, history
        outcomes[expected] += 1
    assert outcomes[True] > 50 and outcomes[False] > 50
