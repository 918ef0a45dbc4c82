"""QbE / QbS mAP on rankings worked out by hand.

Five items in 2-D (cosine distance: 0 for the same direction, 1 - 1/sqrt(2) ~ 0.29
at 45 degrees, 1 at 90 degrees):

    item   label  vector
    0      a      (1, 0)
    1      a      (0, 1)
    2      b      (1, 0)
    3      b      (1, 1)
    4      c      (0, 1)     "c" occurs once: never a QbE query, still a distractor

QbE rankings (query removed). Tied items count with their expected AP over every
order of the tie (a relevant item in a tie of t at ranks s+1..s+t, alone relevant there,
contributes (c + 1)/t * sum 1/p over those ranks, c = relevant items before the tie):
    q0: 2 (0), 3 (.29), then 1, 4 tie at 1    relevant 1 at rank 3 or 4   AP (1/3 + 1/4)/2
    q1: 4 (0), 3 (.29), then 0, 2 tie at 1    relevant 0 at rank 3 or 4   AP (1/3 + 1/4)/2
    q2: 0 (0), 3 (.29), then 1, 4 tie at 1    relevant 3 at rank 2        AP 1/2
    q3: 0, 1, 2, 4 all tie at .29             relevant 2 at rank 1..4     AP (1 + 1/2 + 1/3 + 1/4)/4
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


TIE2 = (1 / 3 + 1 / 4) / 2
TIE4 = (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4
QBE_APS = [TIE2, TIE2, 1 / 2, TIE4]


def test_qbe_hand_computed_with_ties_and_a_single_occurrence():
    queries, aps = qbe_average_precisions(EMB, LABELS)
    assert queries.tolist() == [0, 1, 2, 3]  # item 4 ("c", once) is not a query
    assert aps == pytest.approx(QBE_APS)
    assert map_qbe(EMB, LABELS) == pytest.approx(sum(QBE_APS) / 4)


def test_ties_do_not_depend_on_item_order():
    # q3 sees four items at the same distance: moving its relevant item to the front of
    # the item order changes nothing (before, ties followed item order and it got AP 1)
    for order in ([2, 0, 1, 3, 4], [4, 3, 1, 0, 2], [0, 1, 2, 3, 4]):
        queries, aps = qbe_average_precisions(EMB[order], [LABELS[i] for i in order])
        by_item = dict(zip([order[q] for q in queries], aps))
        assert [by_item[i] for i in range(4)] == pytest.approx(QBE_APS)


def _chance_ap(n_items: int, n_relevant: int) -> float:
    """AP of a uniformly random ranking, in expectation: the item at rank n is relevant
    with probability R/N, and then 1 + (n - 1)(R - 1)/(N - 1) relevant items are expected
    up to it."""
    n, r = n_items, n_relevant
    return sum((1 + (k - 1) * (r - 1) / (n - 1)) / k for k in range(1, n + 1)) / n


@pytest.mark.parametrize("layout", ["sorted", "shuffled"])
def test_a_constant_embedding_scores_chance(layout):
    # 300 words as in the digit-word test sets: a few short words repeat, and sorting by
    # length (as the evaluation loader does) puts them first. A constant embedding knows
    # nothing, so it must score exactly chance in any item order.
    rng = np.random.default_rng(0)
    labels = [f"{i}" for i in rng.integers(0, 10, size=15)] + [
        f"{rng.integers(10**5, 10**8)}" for _ in range(285)]
    labels = sorted(labels, key=len) if layout == "sorted" else list(
        rng.permutation(labels))
    emb = np.ones((len(labels), 8))
    queries, aps = qbe_average_precisions(emb, labels)
    n_rel = {lab: labels.count(lab) - 1 for lab in labels}  # the query leaves its ranking
    expected = [_chance_ap(len(labels) - 1, n_rel[labels[q]]) for q in queries]
    assert aps == pytest.approx(expected)
    assert map_qbe(emb, labels) < 0.05
    # QbS: one query per word, every item tied
    unique = sorted(set(labels))
    q_aps = qbs_average_precisions(np.ones((len(unique), 8)), unique, emb, labels)[1]
    assert q_aps == pytest.approx([_chance_ap(len(labels), labels.count(u)) for u in unique])


def test_tie_aware_ap_equals_the_mean_over_random_orders():
    # a ranking with several tie groups: the exact expectation against brute force over
    # random tie orders
    rng = np.random.default_rng(1)
    dist = rng.integers(0, 4, size=(1, 12)).astype(float)
    relevant = rng.random((1, 12)) < 0.4
    relevant[0, 0] = True
    from afdm_lib.metrics import _ranked_aps

    exact = _ranked_aps(dist, relevant, None)[0]
    samples = []
    for _ in range(4000):
        keys = rng.random(12)
        order = np.lexsort((keys, dist[0]))
        samples.append(average_precision(relevant[0][order]))
    assert exact == pytest.approx(np.mean(samples), abs=0.01)
    # truncated at depth 5
    exact5 = _ranked_aps(dist, relevant, 5)[0]
    samples5 = []
    for _ in range(4000):
        order = np.lexsort((rng.random(12), dist[0]))
        samples5.append(average_precision(relevant[0][order][:5], int(relevant.sum())))
    assert exact5 == pytest.approx(np.mean(samples5), abs=0.01)


def test_queries_with_ap_zero_are_kept():
    # rankings cut at depth 2: q0 (2, 3) and q1 (4, 3) find nothing -> AP 0; q3's tie of
    # four reaches rank 1 or 2 with probability 1/2: (1 + 1/2)/4
    _, aps = qbe_average_precisions(EMB, LABELS, depth=2)
    assert aps == pytest.approx([0, 0, 1 / 2, 1.5 / 4])
    assert map_qbe(EMB, LABELS, depth=2) == pytest.approx((0.5 + 1.5 / 4) / 4)


def test_stop_words_are_not_queries_but_stay_in_rankings():
    assert map_qbe(EMB, LABELS, stopwords={"b"}) == pytest.approx(TIE2)
    # "c" as a stop word changes nothing: it was never a query, and still ranks first
    # for q1
    assert map_qbe(EMB, LABELS, stopwords={"c"}) == pytest.approx(sum(QBE_APS) / 4)


def test_no_query_gives_nan():
    assert math.isnan(map_qbe(EMB[:3], ["a", "b", "c"]))
    assert math.isnan(map_qbe(np.zeros((0, 2)), []))


def test_qbs_hand_computed():
    # query a (1,0): 0, 2 tie at 0 (one relevant: rank 1 or 2), then 3, then 1, 4 tie
    #   at 1: AP = [(1 + 1/2)/2 + 2 * (1/4 + 1/5)/2] / 2
    # query b (1,1): item 3 at 0, then 0, 1, 2, 4 tie at .29 with one relevant:
    #   AP = [1 + 2 * (1/2 + 1/3 + 1/4 + 1/5)/4] / 2
    # query c (0,1): 1, 4 tie at 0 (one relevant) then 3, 0, 2: AP (1 + 1/2)/2
    # query d: no item is labelled d -> excluded; the second "a" query is a duplicate
    q = np.array([[1, 0], [1, 1], [0, 1], [1, 0], [0, 1]], dtype=np.float32)
    q_labels = ["a", "b", "c", "d", "a"]
    queries, aps = qbs_average_precisions(q, q_labels, EMB, LABELS)
    assert queries.tolist() == [0, 1, 2]
    ap_a = ((1 + 1 / 2) / 2 + 2 * (1 / 4 + 1 / 5) / 2) / 2
    ap_b = (1 + 2 * (1 / 2 + 1 / 3 + 1 / 4 + 1 / 5) / 4) / 2
    ap_c = (1 + 1 / 2) / 2
    assert aps == pytest.approx([ap_a, ap_b, ap_c])
    assert map_qbs(q, q_labels, EMB, LABELS) == pytest.approx((ap_a + ap_b + ap_c) / 3)
    assert map_qbs(q, q_labels, EMB, LABELS, stopwords={"a"}) == pytest.approx(
        (ap_b + ap_c) / 2)
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
