"""Shorter GIL turns while a send runs, and the process's own afterwards."""

from __future__ import annotations

import sys

import pytest

from clientela.core.switching import RESPONSIVE_SECONDS, responsive_switching


@pytest.fixture
def default_turns():
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield
    sys.setswitchinterval(before)


def test_turns_are_short_inside_and_restored_after(default_turns):
    with responsive_switching():
        assert sys.getswitchinterval() == pytest.approx(RESPONSIVE_SECONDS)
    assert sys.getswitchinterval() == pytest.approx(0.005)


def test_overlapping_blocks_restore_when_the_last_one_ends(default_turns):
    first, second = responsive_switching(), responsive_switching()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() == pytest.approx(RESPONSIVE_SECONDS)
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == pytest.approx(0.005)


def test_a_process_with_shorter_turns_keeps_them(default_turns):
    sys.setswitchinterval(0.0002)
    with responsive_switching():
        assert sys.getswitchinterval() == pytest.approx(0.0002, rel=0.05)
    assert sys.getswitchinterval() == pytest.approx(0.0002, rel=0.05)


def test_turns_are_restored_when_the_block_fails(default_turns):
    with pytest.raises(RuntimeError), responsive_switching():
        raise RuntimeError("relay gone")
    assert sys.getswitchinterval() == pytest.approx(0.005)
