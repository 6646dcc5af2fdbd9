"""sms.children: a child is ready when its output says so; one that dies first says why."""
import sys

import pytest

from sms.dev import children


def test_a_child_is_returned_once_a_line_says_it_is_ready_and_stopped_on_request():
    child = children.start([sys.executable, "-u", "-c", "print('warming'); print('ready on 123'); import time; time.sleep(60)"],
                           lambda line: "ready on" in line, what="sleeper", timeout=30)
    try:
        assert child.process.poll() is None and child.output[:2] == ["warming", "ready on 123"]
    finally:
        child.stop(timeout=5)
    assert child.process.poll() is not None


def test_a_child_that_exits_before_it_is_ready_is_reported_with_its_last_lines():
    with pytest.raises(RuntimeError) as error:
        children.start([sys.executable, "-c", "print('port 7071 is in use'); raise SystemExit(3)"],
                       lambda line: "ready" in line, what="the server", timeout=30)
    assert str(error.value) == "the server did not start:\nport 7071 is in use"
