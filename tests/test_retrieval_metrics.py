"""QbE / QbS mAP on rankings worked out by hand.

Five items in 2-D (cosine distance: 0 for the same direction, 1 - 1/sqrt(2) ~ 0.29
at 45 degrees, 1 at 90 degrees):

    item   label  vector
    0      a      (1, 0)
    1      a      (0, 1)
    2      b      (1, 0)
    3      b      (1, 1)
    4      c      (0, 1)     "c" occurs once: never a QbE query, still a distractor

QbE rankings (query removed; equal distances keep item order):
    q0: 2 (0), 3 (.29), 1 (1), 4 (1)      relevant 1 at rank 3     AP 1/3
    q1: 4 (0), 3 (.29), 0 (1), 2 (1)      relevant 0 at rank 3     AP 1/3
    q2: 0 (0), 3 (.29), 1 (1), 4 (1)      relevant 3 at rank 2     AP 1/2
    q3: 0, 1, 2, 4 all at .29 (a tie)     relevant 2 at rank 3     AP 1/3
"""

import math

import numpy as np
import pytest

from afdm_lib.metrics import (
    average_precision,
    cosine_distances,
    map_qbe,
    map_qbs,
    qbe_average_precisions,
    qbs_average_precisions,
)

EMB = np.array([[1, 0], [0, 1], [1, 0], [1, 1], [0, 1]], dtype=np.float32)
LABELS = ["a", "a", "b", "b", "c"]


def test_average_precision_by_hand():
    assert average_precision([1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([0, 0, 1]) == pytest.approx(1 / 3)
    # a truncated ranking: the third relevant item lies beyond it and adds 0
    assert average_precision([1, 0, 1], n_relevant=3) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision([0, 0], n_relevant=2) == 0.0
    assert math.isnan(average_precision([0, 0]))
    with pytest.raises(ValueError, match="n_relevant"):
        average_precision([1, 1], n_relevant=1)


def test_qbe_hand_computed_with_ties_and_a_single_occurrence():
    queries, aps = qbe_average_precisions(EMB, LABELS)
    assert queries.tolist() == [0, 1, 2, 3]  # item 4 ("c", once) is not a query
    assert aps == pytest.approx([1 / 3, 1 / 3, 1 / 2, 1 / 3])
    assert map_qbe(EMB, LABELS) == pytest.approx(1.5 / 4)


def test_ties_follow_item_order():
    # q3 sees four items at the same distance; moving its relevant item to the front
    # of the item order moves it to rank 1
    order = [2, 0, 1, 3, 4]
    _, aps = qbe_average_precisions(EMB[order], [LABELS[i] for i in order])
    assert aps[3] == pytest.approx(1.0)


def test_queries_with_ap_zero_are_kept():
    # rankings cut at depth 2: q0 (2, 3), q1 (4, 3) and q3 (0, 1) find nothing -> AP 0
    _, aps = qbe_average_precisions(EMB, LABELS, depth=2)
    assert aps == pytest.approx([0, 0, 1 / 2, 0])
    assert map_qbe(EMB, LABELS, depth=2) == pytest.approx(0.5 / 4)  # not 0.5


def test_stop_words_are_not_queries_but_stay_in_rankings():
    assert map_qbe(EMB, LABELS, stopwords={"b"}) == pytest.approx(1 / 3)
    # "c" as a stop word changes nothing: it was never a query, and still ranks first
    # for q1
    assert map_qbe(EMB, LABELS, stopwords={"c"}) == pytest.approx(1.5 / 4)


def test_no_query_gives_nan():
    assert math.isnan(map_qbe(EMB[:3], ["a", "b", "c"]))
    assert math.isnan(map_qbe(np.zeros((0, 2)), []))


def test_qbs_hand_computed():
    # query a (1,0): ranking 0, 2, 3, 1, 4 -> relevant at ranks 1, 4 -> (1 + 2/4) / 2
    # query b (1,1): item 3 at 0, the rest tie at .29 -> 3, 0, 1, 2, 4 -> ranks 1, 4
    # query c (0,1): ranking 1, 4, 3, 0, 2 -> rank 2 -> 1/2
    # query d: no item is labelled d -> excluded; the second "a" query is a duplicate
    q = np.array([[1, 0], [1, 1], [0, 1], [1, 0], [0, 1]], dtype=np.float32)
    q_labels = ["a", "b", "c", "d", "a"]
    queries, aps = qbs_average_precisions(q, q_labels, EMB, LABELS)
    assert queries.tolist() == [0, 1, 2]
    assert aps == pytest.approx([0.75, (1 + 2 / 4) / 2, 0.5])
    assert map_qbs(q, q_labels, EMB, LABELS) == pytest.approx((0.75 + 0.75 + 0.5) / 3)
    assert map_qbs(q, q_labels, EMB, LABELS, stopwords={"a"}) == pytest.approx(
        (0.75 + 0.5) / 2)
    assert math.isnan(map_qbs(q[3:4], ["d"], EMB, LABELS))


def test_perfect_and_chunked_rankings():
    # one-hot embeddings of the label: every ranking is perfect, across query chunks
    rng = np.random.default_rng(0)
    labels = [f"w{i}" for i in rng.integers(0, 40, size=1200)]
    codes = {lab: i for i, lab in enumerate(sorted(set(labels)))}
    emb = np.eye(len(codes))[[codes[lab] for lab in labels]]
    assert map_qbe(emb, labels) == pytest.approx(1.0)
    unique = sorted(codes)
    assert map_qbs(np.eye(len(codes)), unique, emb, labels) == pytest.approx(1.0)


def test_cosine_distance_and_shape_errors():
    d = cosine_distances(np.array([[2.0, 0.0], [0.0, 0.0]]), EMB)
    assert d[0].tolist() == pytest.approx([0, 1, 0, 1 - 1 / math.sqrt(2), 1])
    assert d[1].tolist() == [1, 1, 1, 1, 1]  # a zero vector is equally far from all
    with pytest.raises(ValueError, match="5 embeddings for 4 labels"):
        map_qbe(EMB, LABELS[:4])
    with pytest.raises(ValueError, match="same dimension"):
        map_qbs(np.zeros((1, 3)), ["a"], EMB, LABELS)
