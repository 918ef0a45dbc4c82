"""CTC coding and decoding on hand-made logits."""

import math

import torch

from afdm_lib.ctc import Alphabet, beam_decode, greedy_decode


def logits_from_path(path, classes):
    lp = torch.full((len(path), 1, classes), math.log(0.01))
    for t, c in enumerate(path):
        lp[t, 0, c] = math.log(0.9)
    return lp


def test_alphabet_roundtrip_and_unknown_characters_are_counted():
    a = Alphabet(list("৩১২"))
    ids, unknown = a.encode("১২x৩")
    assert unknown == 1
    assert a.decode(ids) == "১২৩"
    assert len(a) == 4  # 3 characters + blank


def test_greedy_merges_repeats_and_drops_blanks():
    # path: a a - a b b -  => "aab"
    lp = logits_from_path([1, 1, 0, 1, 2, 2, 0], 3)
    assert greedy_decode(lp, torch.tensor([7])) == [[1, 1, 2]]


def test_greedy_respects_lengths():
    lp = logits_from_path([1, 2, 1, 2], 3)
    assert greedy_decode(lp, torch.tensor([2])) == [[1, 2]]


def test_beam_finds_the_most_probable_labelling_not_the_best_path():
    # two frames; best path is "-" "-"? No: construct the classic case where the best
    # single path is blank-blank (0.36) but label "a" has total mass 0.64 > 0.36.
    p = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()[:, None, :]
    assert greedy_decode(p, torch.tensor([2])) == [[]]
    # P("a") = 0.4*0.4 + 0.4*0.6 + 0.6*0.4 = 0.64 > P("") = 0.36
    assert beam_decode(p, torch.tensor([2]), beam_width=5) == [[1]]


def test_beam_agrees_with_greedy_on_peaked_logits():
    lp = logits_from_path([1, 0, 1, 2, 2, 0, 3], 4)
    assert beam_decode(lp, torch.tensor([7])) == greedy_decode(lp, torch.tensor([7]))
