"""The RFC 5798 state machine, rule by rule, on a fake clock (no sockets, no sleeps)."""

from __future__ import annotations

import pytest

from lbcore.vrrp.fsm import (
    Params,
    RemoveAddresses,
    Router,
    SendAdvert,
    SendGarp,
    State,
    Transition,
    effective_priority,
    master_down_interval,
    skew_time,
)

A_IP, B_IP = "198.19.1.10", "198.19.1.11"


def router(prio=100, **kw) -> Router:
    kw.setdefault("interval_cs", 100)
    kw.setdefault("primary_ip", A_IP)
    return Router(Params(vrid=7, priority=prio, **kw))


def kinds(actions):
    return [type(a).__name__ for a in actions]


def transitions(actions):
    return [(a.old, a.new) for a in actions if isinstance(a, Transition)]


def run_until(r: Router, until: float, now: float = 0.0):
    """Fire timers up to ``until``; returns (time, actions) pairs."""
    out = []
    while (t := r.next_deadline()) is not None and t <= until:
        out.append((t, r.handle_timer(t)))
    return out


# ---------------------------------------------------------------- timers and formulas


def test_skew_and_master_down_interval_formulas():
    # RFC 5798 §6.1 (v3): skew scales with the interval.
    assert skew_time(3, 100, 1.0) == pytest.approx(156 / 256)
    assert skew_time(3, 100, 0.1) == pytest.approx(0.1 * 156 / 256)
    assert master_down_interval(3, 100, 0.1) == pytest.approx(0.3 + 0.1 * 156 / 256)
    # RFC 3768 §6.1 (v2): skew is in seconds whatever the interval (keepalived agrees).
    assert skew_time(2, 100, 3.0) == pytest.approx(156 / 256)
    assert master_down_interval(2, 100, 1.0) == pytest.approx(3.609375)
    assert master_down_interval(2, 254, 1.0) < master_down_interval(2, 100, 1.0)


def test_startup_enters_backup_and_arms_master_down_timer():
    r = router(100, version=3, interval_cs=10)
    acts = r.start(now=5.0)
    assert transitions(acts) == [(State.INIT, State.BACKUP)]
    assert r.next_deadline() == pytest.approx(5.0 + 0.3 + 0.1 * 156 / 256)
    assert r.start(now=6.0) == []  # startup is a one-shot event


def test_backup_becomes_master_when_master_down_timer_expires():
    r = router(100, garp_repeat=3, garp_delay=5.0)
    r.start(0.0)
    down = r.next_deadline()
    assert r.handle_timer(down - 0.001) == []
    acts = r.handle_timer(down)
    assert kinds(acts) == ["AddAddresses", "SendAdvert", "SendGarp", "Transition"]
    assert acts[1] == SendAdvert(100) and acts[2] == SendGarp(3)
    assert r.state is State.MASTER


def test_master_sends_adverts_every_interval_and_a_second_garp_burst_after_delay():
    r = router(100, interval_cs=50, garp_delay=2.0)
    r.start(0.0)
    t0 = r.next_deadline()
    r.handle_timer(t0)
    fired = run_until(r, t0 + 2.6)
    adverts = [t for t, acts in fired for a in acts if isinstance(a, SendAdvert)]
    assert adverts == pytest.approx([t0 + 0.5 * k for k in range(1, 6)])
    garps = [(t, a) for t, acts in fired for a in acts if isinstance(a, SendGarp)]
    assert garps == [(pytest.approx(t0 + 2.0), SendGarp(5))]


def test_late_timer_does_not_drift_the_advert_schedule():
    r = router(100, interval_cs=100, garp_delay=0)
    r.start(0.0)
    t0 = r.next_deadline()
    r.handle_timer(t0)
    r.handle_timer(t0 + 1.2)  # woke 0.2 s late
    assert r.next_deadline() == pytest.approx(t0 + 2.0)


# ---------------------------------------------------------------- backup rules


def test_backup_resets_timer_on_higher_or_equal_priority_adverts():
    r = router(100)
    r.start(0.0)
    for t in (1.0, 2.0, 3.0, 4.0):
        assert r.receive(B_IP, 100 if t % 2 else 150, 100, t) == []
        assert r.handle_timer(t + 0.5) == []
    assert r.state is State.BACKUP
    assert r.next_deadline() == pytest.approx(4.0 + 3.609375)
    assert r.master_ip == B_IP


def test_backup_preempts_a_lower_priority_master():
    r = router(150)
    r.start(0.0)
    for t in (1.0, 2.0, 3.0, 4.0):
        r.receive(B_IP, 100, 100, t)  # ignored: we outrank it
        r.handle_timer(t + 0.5)
    assert r.state is State.MASTER  # took over at the first down-timer expiry


def test_backup_preemption_waits_for_its_timer():
    r = router(150)
    r.start(0.0)
    down = r.next_deadline()
    r.receive(B_IP, 100, 100, 1.0)
    assert r.state is State.BACKUP and r.next_deadline() == down  # not reset by a lower one
    r.handle_timer(down)
    assert r.state is State.MASTER


def test_nopreempt_backup_never_takes_over_from_a_live_lower_master():
    r = router(150, preempt=False)
    r.start(0.0)
    for k in range(1, 30):
        r.receive(B_IP, 100, 100, float(k))
        r.handle_timer(float(k) + 0.9)
    assert r.state is State.BACKUP
    r.handle_timer(29.0 + 3.7)  # the lower master died: now it takes over
    assert r.state is State.MASTER


def test_preempt_delay_accepts_a_lower_master_until_the_delay_runs_out():
    r = router(150, preempt_delay=10.0)
    r.start(0.0)  # the delay also runs from startup: until t=10
    t = 0.0
    while r.state is State.BACKUP and t < 30:
        t += 1.0
        r.receive(B_IP, 100, 100, t)
        r.handle_timer(t + 0.5)
    # adverts until t=10 keep it backup; the first one after is ignored and the
    # down timer (3.6 s) fires: master within [10, 10 + 1 + 3.61].
    assert r.state is State.MASTER
    assert 10.0 < t <= 14.7


def test_preempt_delay_restarts_after_a_higher_master_was_seen():
    r = router(150, preempt_delay=5.0)
    r.start(0.0)
    r.receive(B_IP, 200, 100, 20.0)  # a higher master: delay cleared
    assert r.preempt_at is None
    r.receive(B_IP, 100, 100, 21.0)  # now lower: delay starts from here
    assert r.preempt_at == pytest.approx(26.0)


def test_priority_zero_makes_backup_take_over_after_skew_time_only():
    r = router(100, version=3, interval_cs=100)
    r.start(0.0)
    r.receive(B_IP, 200, 100, 1.0)
    r.receive(B_IP, 0, 100, 1.5)
    assert r.next_deadline() == pytest.approx(1.5 + 156 / 256)
    r.handle_timer(1.5 + 156 / 256)
    assert r.state is State.MASTER


def test_v3_backup_learns_the_masters_advert_interval():
    r = router(100, version=3, interval_cs=100)
    r.start(0.0)
    r.receive(B_IP, 200, 20, 1.0)
    assert r.master_interval == pytest.approx(0.2)
    assert r.next_deadline() == pytest.approx(1.0 + 0.6 + 0.2 * 156 / 256)


def test_v2_backup_keeps_its_own_interval():
    r = router(100, version=2, interval_cs=100)
    r.start(0.0)
    r.receive(B_IP, 200, 300, 1.0)
    assert r.master_interval == 1.0


# ---------------------------------------------------------------- master rules


def master(prio=100, ip=A_IP, **kw) -> Router:
    r = router(prio, primary_ip=ip, **kw)
    r.start(0.0)
    r.handle_timer(r.next_deadline())
    assert r.state is State.MASTER
    return r


def test_master_yields_to_higher_priority():
    r = master(100)
    acts = r.receive(B_IP, 150, 100, 10.0)
    assert acts[0] == RemoveAddresses()
    assert transitions(acts) == [(State.MASTER, State.BACKUP)]
    assert r.next_deadline() == pytest.approx(10.0 + 3.609375)


def test_equal_priority_is_won_by_the_higher_primary_address():
    low = master(100, ip="198.19.1.10")
    assert transitions(low.receive("198.19.1.11", 100, 100, 5.0)) == [(State.MASTER, State.BACKUP)]
    high = master(100, ip="198.19.1.11")
    acts = high.receive("198.19.1.10", 100, 100, 5.0)
    assert high.state is State.MASTER
    assert acts == [SendAdvert(100), SendGarp(1)]  # forces the other one down now


def test_master_hearing_a_lower_priority_reasserts_immediately():
    r = master(150)
    acts = r.receive(B_IP, 100, 100, 7.0)
    assert r.state is State.MASTER and acts[0] == SendAdvert(150)
    assert r.next_deadline() == pytest.approx(8.0)


def test_master_hearing_priority_zero_sends_an_advert_at_once():
    r = master(150)
    assert r.receive(B_IP, 0, 100, 7.0) == [SendAdvert(150)]


def test_address_owner_becomes_master_at_startup():
    r = router(255)
    acts = r.start(0.0)
    assert kinds(acts) == ["AddAddresses", "SendAdvert", "SendGarp", "Transition"]
    assert r.state is State.MASTER
    # An owner never yields: nothing outranks 255.
    r.receive(B_IP, 254, 100, 1.0)
    assert r.state is State.MASTER


def test_stopping_master_resigns_with_priority_zero():
    r = master(150)
    acts = r.shutdown(9.0)
    assert acts[:2] == [SendAdvert(0), RemoveAddresses()]
    assert transitions(acts) == [(State.MASTER, State.STOP)]
    assert r.next_deadline() is None
    assert r.receive(B_IP, 100, 100, 10.0) == []


def test_stopping_backup_sends_nothing():
    r = router(100)
    r.start(0.0)
    assert kinds(r.shutdown(1.0)) == ["Transition"]


# ---------------------------------------------------------------- trackers


def test_effective_priority_clamps_and_leaves_the_owner_alone():
    assert effective_priority(100, [-30, 10]) == 80
    assert effective_priority(100, [-200]) == 1
    assert effective_priority(200, [100]) == 254
    assert effective_priority(255, [-100]) == 255


def test_lowered_master_advertises_its_new_priority_at_once():
    r = master(150, garp_delay=0)
    assert r.set_priority(90, 20.0) == [SendAdvert(90)]
    assert r.next_deadline() == pytest.approx(21.0)
    assert r.set_priority(90, 20.5) == []


def test_fault_from_master_resigns_and_recovery_returns_to_backup():
    r = master(150)
    acts = r.set_fault("script:chk", True, 5.0)
    assert acts[:2] == [SendAdvert(0), RemoveAddresses()]
    assert r.state is State.FAULT and r.next_deadline() is None
    assert r.receive(B_IP, 100, 100, 6.0) == []  # FAULT ignores adverts
    assert r.set_fault("interface:eth1", True, 6.0) == []  # already faulty
    assert r.set_fault("script:chk", False, 7.0) == []  # eth1 still down
    acts = r.set_fault("interface:eth1", False, 8.0)
    assert transitions(acts) == [(State.FAULT, State.BACKUP)]
    assert r.next_deadline() == pytest.approx(8.0 + 3.0 + 106 / 256)


def test_fault_at_startup_goes_straight_to_fault():
    r = router(100)
    r.faults.add("interface:eth0")
    assert transitions(r.start(0.0)) == [(State.INIT, State.FAULT)]


def test_sync_group_forcing():
    r = router(100)
    r.start(0.0)
    assert transitions(r.force_master(1.0, "group")) == [(State.BACKUP, State.MASTER)]
    assert transitions(r.force_backup(2.0, "group")) == [(State.MASTER, State.BACKUP)]
    assert r.force_backup(3.0, "group") == []


def test_params_validation():
    with pytest.raises(ValueError):
        Params(vrid=1, priority=0)
    with pytest.raises(ValueError):
        Params(vrid=1, priority=100, interval_cs=0)


# ---------------------------------------------------------------- two routers, one wire


class Wire:
    """Two or more routers joined in memory: adverts are delivered after ``delay``."""

    def __init__(self, *routers: Router, delay: float = 0.001):
        self.routers = list(routers)
        self.alive = {id(r): True for r in routers}
        self.delay = delay
        self.inbox: list[tuple[float, Router, str, int, int]] = []
        self.now = 0.0

    def _emit(self, src: Router, actions) -> None:
        for a in actions:
            if isinstance(a, SendAdvert):
                for dst in self.routers:
                    if dst is not src and self.alive[id(dst)]:
                        self.inbox.append(
                            (
                                self.now + self.delay,
                                dst,
                                src.params.primary_ip,
                                a.priority,
                                src.params.interval_cs,
                            )
                        )

    def start(self) -> None:
        for r in self.routers:
            self._emit(r, r.start(self.now))

    def step_to(self, until: float) -> None:
        while True:
            timers = [
                (r.next_deadline(), r)
                for r in self.routers
                if self.alive[id(r)] and r.next_deadline() is not None
            ]
            nxt_timer = min(timers, key=lambda x: x[0], default=(None, None))
            nxt_msg = min(self.inbox, key=lambda x: x[0], default=None)
            t_timer = nxt_timer[0] if nxt_timer[0] is not None else float("inf")
            t_msg = nxt_msg[0] if nxt_msg else float("inf")
            if min(t_timer, t_msg) > until:
                self.now = until
                return
            if t_msg <= t_timer:
                self.inbox.remove(nxt_msg)
                self.now, dst, src, prio, iv = nxt_msg
                if self.alive[id(dst)]:
                    self._emit(dst, dst.receive(src, prio, iv, self.now))
            else:
                self.now = t_timer
                r = nxt_timer[1]
                self._emit(r, r.handle_timer(self.now))

    def kill(self, r: Router) -> None:
        self.alive[id(r)] = False

    def states(self):
        return [r.state for r in self.routers]


def test_in_memory_pair_elects_fails_over_and_preempts_back():
    a = router(150, version=3, interval_cs=10, primary_ip=A_IP, garp_delay=0)
    b = router(100, version=3, interval_cs=10, primary_ip=B_IP, garp_delay=0)
    wire = Wire(a, b)
    wire.start()
    wire.step_to(1.0)
    assert wire.states() == [State.MASTER, State.BACKUP]
    wire.kill(a)
    wire.step_to(1.0 + master_down_interval(3, 100, 0.1) + 0.11)
    assert b.state is State.MASTER
    # a comes back (a fresh router, as after a restart) and preempts.
    a2 = router(150, version=3, interval_cs=10, primary_ip=A_IP, garp_delay=0)
    wire.routers[0] = a2
    wire.alive[id(a2)] = True
    wire._emit(a2, a2.start(wire.now))
    wire.step_to(wire.now + 1.0)
    assert (a2.state, b.state) == (State.MASTER, State.BACKUP)


def test_in_memory_tracker_weight_moves_mastership_and_back():
    a = router(150, version=3, interval_cs=10, primary_ip=A_IP, garp_delay=0)
    b = router(120, version=3, interval_cs=10, primary_ip=B_IP, garp_delay=0)
    wire = Wire(a, b)
    wire.start()
    wire.step_to(1.0)
    assert wire.states() == [State.MASTER, State.BACKUP]
    wire._emit(a, a.set_priority(effective_priority(150, [-50]), wire.now))  # script failed
    wire.step_to(2.0)
    assert wire.states() == [State.BACKUP, State.MASTER]
    wire._emit(a, a.set_priority(effective_priority(150, []), wire.now))  # script recovered
    wire.step_to(3.0)
    assert wire.states() == [State.MASTER, State.BACKUP]


def test_in_memory_clean_stop_hands_over_within_skew():
    a = router(150, version=3, interval_cs=100, primary_ip=A_IP, garp_delay=0)
    b = router(100, version=3, interval_cs=100, primary_ip=B_IP, garp_delay=0)
    wire = Wire(a, b)
    wire.start()
    wire.step_to(10.0)
    t_stop = wire.now
    wire._emit(a, a.shutdown(t_stop))
    wire.kill(a)
    wire.step_to(t_stop + skew_time(3, 100, 1.0) + 0.01)
    assert b.state is State.MASTER


def test_no_dual_master_in_steady_state_with_equal_priorities():
    a = router(100, version=3, interval_cs=10, primary_ip=A_IP, garp_delay=0)
    b = router(100, version=3, interval_cs=10, primary_ip=B_IP, garp_delay=0)
    wire = Wire(a, b)
    wire.start()
    wire.step_to(2.0)
    assert wire.states().count(State.MASTER) == 1
    assert b.state is State.MASTER  # the higher address wins the tie
