"""The sequence examples (issue 14) run on their small budget (--fast) and show what they claim.

Each example's ``main(argv)`` returns the numbers it printed; the thresholds below come from
runs with seeds 0-3 (char_lm, seq2seq) or 0-7 (q_learning) and keep a margin under the worst.
Together they take ~30 s of CPU on the NumPy backend on a quiet 2-core machine.
"""
import datetime
import importlib
import sys
from collections import deque
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.training  # what training reaches: must hold on any BLAS kernel
sys.path.insert(0, str(ROOT / "examples"))  # the examples import their shared _common helper


def run(name, out):
    return importlib.import_module(name).main(["--fast", "--out", str(out)])


def pngs(out):
    return sorted(p.name for p in Path(out).glob("*.png"))


def test_char_lm_counting_baselines_on_a_known_sequence():
    from char_lm import counting_baselines

    abab = np.array([0, 1] * 500)
    unigram, bigram = counting_baselines(abab, abab, 2)
    assert abs(unigram - 1.0) < 1e-3          # two equally common letters: one bit each
    assert bigram < 0.01                      # the previous letter gives the next one away


def test_char_lm_learns_more_than_letter_frequencies(tmp_path):
    r = run("char_lm", tmp_path)
    assert r["bigram_bits"] < r["unigram_bits"]
    # 40 steps: ~5.95 bits (uniform over 62 characters) down to ~3.5 on validation, 1.17-1.26
    # below the unigram entropy (4.79) over seeds 0-3
    assert r["val_bits"][-1] < r["unigram_bits"] - 0.8
    assert r["val_bits"][-1] < r["val_bits"][0]
    assert r["train_bits"][-1] < r["train_bits"][0] - 2.0          # measured 2.43-2.52
    assert all(s.startswith("KING RICHARD III:\n") for s in r["samples"])
    assert pngs(tmp_path) == ["char_lm_loss.png"]


def test_seq2seq_dates_in_words():
    from seq2seq import FORMATS, date_words, make_data

    d = datetime.date(1998, 3, 23)
    assert date_words(d, FORMATS[0]) == "the twenty third of march nineteen ninety eight"
    assert date_words(datetime.date(1905, 2, 20), FORMATS[2]) == "february twentieth nineteen oh five"
    assert date_words(datetime.date(2009, 12, 31), FORMATS[1]) == \
        "december the thirty first two thousand and nine"
    assert date_words(datetime.date(2010, 7, 1), FORMATS[2]) == "july first twenty ten"
    train, test = make_data(500, 100)
    assert not {iso for _, iso in train} & {iso for _, iso in test}   # held-out means other dates


def test_seq2seq_translates_unseen_dates(tmp_path):
    r = run("seq2seq", tmp_path)
    # greedy decoding after 300 steps: 99.3%, 99.8%, 100% and 99.7% exact match (seeds 0-3)
    assert r["accuracy"] >= 0.95
    assert r["losses"][-1] < 0.1 * r["losses"][0]                 # 2.56 -> 0.008-0.019
    assert len(r["examples"]) == 6
    first = r["position_errors"][0]                     # the heat map: "19"/"20" come first,
    assert first[9] > first[0]                          # the last digit of the day comes late
    assert pngs(tmp_path) == ["seq2seq_training.png"]


def shortest_path_to_goal(env):
    """Breadth-first search over the grid's moves, never through a pit."""
    seen, queue = {env.start: 0}, deque([env.start])
    while queue:
        state = queue.popleft()
        for action in range(4):
            nxt, reward, done = env.step(state, action)
            if done and reward > 0:
                return seen[state] + 1
            if not done and nxt not in seen:
                seen[nxt] = seen[state] + 1
                queue.append(nxt)
    raise AssertionError("the goal cannot be reached")


def test_q_learning_policy_reaches_the_goal(tmp_path):
    from q_learning import GridWorld

    r = run("q_learning", tmp_path)
    assert r["reached_goal"]
    assert r["path_length"] == shortest_path_to_goal(GridWorld())   # and by a shortest path
    assert r["success_rate"] >= 0.75                              # from any open cell: 0.85-1.0
    rewards = r["rewards"]
    assert np.mean(rewards[-30:]) > np.mean(rewards[:30]) + 1.0   # measured gap 1.37-1.70
    assert pngs(tmp_path) == ["q_learning.png"]
