"""The engine clock's apportioning, driven by a controlled time source (the real one is exercised end to end)."""

import threading

import pytest

from budgetflow.llm._clock import EngineClock


class FakeTime:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_lone_request_pays_its_whole_busy_time_and_idle_is_free():
    now = FakeTime()
    clock = EngineClock(now)
    now.t += 5  # idle
    clock.start("a", 1)
    now.t += 2
    assert clock.finish("a") == pytest.approx(2)
    now.t += 3
    assert clock.busy_seconds == pytest.approx(2)


def test_shared_time_is_split_by_live_sequences_and_sums_to_busy_time():
    now = FakeTime()
    clock = EngineClock(now)
    clock.start("a", 1)
    now.t += 1  # a alone: a += 1
    clock.start("b", 3)
    now.t += 4  # a:b = 1:3 → a += 1, b += 3
    clock.set_weight("b", 1)  # two of b's sequences finished
    now.t += 2  # 1:1 → a += 1, b += 1
    a = clock.finish("a")
    now.t += 1  # b alone
    b = clock.finish("b")
    assert a == pytest.approx(3) and b == pytest.approx(5)
    assert a + b == pytest.approx(clock.busy_seconds) == pytest.approx(8)


def test_share_grows_while_in_flight_and_threads_are_safe():
    clock = EngineClock()
    clock.start("x", 2)
    first = clock.share("x")
    second = clock.share("x")
    assert 0 <= first <= second
    keys = [f"k{i}" for i in range(200)]

    def churn(k):
        clock.start(k, 1)
        clock.share(k)
        clock.finish(k)

    threads = [threading.Thread(target=churn, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.finish("x") >= second
    assert clock._flights == {}
