"""The engine deadlines' decision (serve.gateway.engine_client.deadlines): which limit runs, when it is due."""

import math

from serve.gateway.engine_client.deadlines import Limits, check, first_check

WHOLE = Limits(1800.0)
STREAM = Limits(180.0, 60.0)


def test_a_whole_answer_has_one_deadline_from_sending_whatever_it_reads():
    due = check(WHOLE, now=100.0, sent_at=10.0, last_read=99.0, started=True, paused=False)
    assert (due.at, due.again) == (1810.0, 1810.0) and "1800 s" in due.why and "total" in due.why
    assert first_check(WHOLE, 10.0) == 1810.0


def test_a_stream_waits_for_its_first_byte_and_looks_again_within_a_stall_period():
    due = check(STREAM, now=70.0, sent_at=10.0, last_read=10.0, started=False, paused=False)
    assert due.at == 190.0 and due.again == 130.0 and "first byte" in due.why
    assert first_check(STREAM, 10.0) == 70.0  # a stream that starts and then stalls is not missed until 190


def test_a_started_stream_is_due_a_stall_period_after_its_last_read():
    due = check(STREAM, now=150.0, sent_at=10.0, last_read=120.0, started=True, paused=False)
    assert (due.at, due.again) == (180.0, 180.0) and "60 s" in due.why and "stall" in due.why


def test_a_stream_the_caller_has_paused_is_never_due_while_paused():
    due = check(STREAM, now=500.0, sent_at=10.0, last_read=20.0, started=True, paused=True)
    assert due.at == math.inf and due.again == 560.0


def test_a_first_byte_limit_shorter_than_the_stall_limit_is_checked_on_time():
    limits = Limits(0.2, 5.0)
    assert first_check(limits, 0.0) == 0.2
    assert check(limits, now=0.2, sent_at=0.0, last_read=0.0, started=False, paused=False).at == 0.2
