"""posedata.sides: sided names and flip-pair guessing, on the spellings real datasets use."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posedata.sides import guess_flip_pairs, name_side, sided, unpaired_sided


@pytest.mark.parametrize("name,side", [
    ("left_eye", "left"), ("RightHand", "right"), ("l_knee", "left"), ("paw_R", "right"), ("lShoulder", "left"),
    ("eyeL", "left"), ("eyeR", "right"), ("forelegL1", "left"), ("hindlegR4", "right"), ("L_Eye", "left"),
    ("R_F_Elbow", "right"), ("leftear", "left"), ("rightear", "right"), ("LShoulder", "left"), ("REye", "right"),
    ("Left Hip", "left"), ("anttipL", "left"), ("earleft", "left"), ("top-left", "left"),
    ("nose", None), ("elbow", None), ("tail", None), ("TailBase", None), ("Leftover", None), ("clefteye", None),
    ("Lip", None), ("Rear", None), ("thumb1", None), ("L1", None), ("HEAD", None), ("left", None)])
def test_name_side(name, side):
    assert name_side(name) == side


FLY = ["head", "eyeL", "eyeR", "neck", "thorax", "abdomen", "forelegR1", "forelegR2", "forelegL1", "forelegL2",
       "wingL", "wingR"]


@pytest.mark.parametrize("names,pairs", [
    # fly / locust (DeepPoseKit): the side as a capital inside the name, before the leg segment's number
    (FLY, [("eyeL", "eyeR"), ("forelegL1", "forelegR1"), ("forelegL2", "forelegR2"), ("wingL", "wingR")]),
    # Animal-Pose: L_/R_ before the rest, F/B for front and back legs
    (["L_Eye", "R_Eye", "Nose", "L_F_Paw", "R_F_Paw", "L_B_Paw", "R_B_Paw"],
     [("L_Eye", "R_Eye"), ("L_F_Paw", "R_F_Paw"), ("L_B_Paw", "R_B_Paw")]),
    # DeepLabCut open field: glued words
    (["snout", "leftear", "rightear", "tailbase"], [("leftear", "rightear")]),
    # OpenPose: right listed first; pairs are still (left, right)
    (["Nose", "RShoulder", "LShoulder", "REye", "LEye"], [("LShoulder", "RShoulder"), ("LEye", "REye")]),
    (["Left Shoulder", "Right Shoulder", "Head top"], [("Left Shoulder", "Right Shoulder")]),
    # a stem with two names on one side is ambiguous: nothing guessed
    (["eyeL", "eye_l", "eyeR"], []),
])
def test_guess_flip_pairs(names, pairs):
    assert guess_flip_pairs(names) == pairs


def test_unpaired_sided_names():
    assert unpaired_sided(["eyeL", "nose", "forelegL1", "forelegR1", "wingR"], set()) == ["eyeL", "wingR"]
    assert unpaired_sided(["eyeL", "wingR"], {"eyeL", "wingR"}) == []


_STEM = st.text(alphabet="abcdefghijkmnopqstuvwxyz", min_size=3, max_size=8).filter(
    lambda s: "left" not in s and "right" not in s)


@given(_STEM, st.sampled_from([("left_{}", "right_{}"), ("{}_L", "{}_R"), ("L{}", "R{}"), ("{}L", "{}R"),
                               ("{}Left", "{}Right"), ("left{}", "right{}"), ("L_{}", "R_{}")]),
       st.integers(0, 9))
def test_any_stem_pairs_in_every_spelling(stem, spelling, number):
    def cap(s: str) -> str:  # a capital side letter glued to a word needs the word to start a token
        return s[0].upper() + s[1:] if spelling[0].startswith("L{") else s

    left, right = (sp.format(cap(stem)) + str(number) for sp in spelling)
    assert sided(left)[0] == "left" and sided(right)[0] == "right"
    assert guess_flip_pairs([right, "centre", left]) == [(left, right)]
