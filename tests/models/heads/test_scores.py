"""Every anomaly score against its equation on 2 masks x 3 classes x 2x3 pixels.

Each test spells pixel (0, 0) out by hand (m = 0.9 and 0.1) and checks all six pixels against
a per-pixel loop over the equation.
"""

import math

import pytest
import torch

from anomask.errors import AnomaskError
from anomask.models.heads import ANOMALY_SCORES, anomaly_score, closed_set_semantic, gather_evidence

M1 = [[0.9, 0.55, 0.1], [0.8, 0.3, 0.6]]
M2 = [[0.1, 0.45, 0.9], [0.3, 0.7, 0.2]]
P_K1 = [[0.7, 0.2, 0.05, 0.05], [0.1, 0.3, 0.5, 0.1]]  # K=3 known + no-object
P_K2 = [[0.6, 0.1, 0.1, 0.1, 0.1], [0.1, 0.2, 0.1, 0.5, 0.1]]  # K=3 known + negative + no-object
PIXELS = [(r, c) for r in range(2) for c in range(3)]


@pytest.fixture
def k1(metadata_factory, probs_to_logits, assignments_to_logits):
    return probs_to_logits(P_K1), assignments_to_logits([M1, M2]), metadata_factory(3)


@pytest.fixture
def k2(metadata_factory, probs_to_logits, assignments_to_logits):
    return probs_to_logits(P_K2), assignments_to_logits([M1, M2]), metadata_factory(3, negative=True)


def per_pixel(fn):
    """Reference: ``fn(m, P)`` with m = (m_1, m_2) at one pixel, over all pixels."""

    def run(probs):
        return torch.tensor(
            [[fn((M1[r][c], M2[r][c]), probs) for c in range(3)] for r in range(2)], dtype=torch.float64
        )

    return run


def closed(m, P, k):
    """EAM (Grcić et al., 2023), eq. 2: sum_i m_i P_i(k)."""
    return sum(m[i] * P[i][k] for i in range(2))


def check(name, inputs, expected_00, reference):
    logits, masks, metadata = inputs
    score = anomaly_score(name, logits, masks, metadata)[0]
    assert score.shape == (2, 3)
    assert score[0, 0].item() == pytest.approx(expected_00, abs=1e-9)
    torch.testing.assert_close(score, reference, atol=1e-9, rtol=0)


def test_closed_set_semantic_is_argmax_of_ensemble(k1):
    logits, masks, _ = k1
    evidence = gather_evidence(logits, masks, 3)
    assert evidence.class_scores[0, :, 0, 0].tolist() == pytest.approx(
        [0.9 * 0.7 + 0.1 * 0.1, 0.9 * 0.2 + 0.1 * 0.3, 0.9 * 0.05 + 0.1 * 0.5]
    )
    expected = [
        [max(range(3), key=lambda k: closed((M1[r][c], M2[r][c]), P_K1, k)) for c in range(3)] for r in range(2)
    ]
    assert closed_set_semantic(evidence.class_scores)[0].tolist() == expected
    assert expected[0][2] == 2  # mask 2 (class 2) dominates there: the test is not trivially all-zero


def test_msp_is_aem(k1):
    reference = per_pixel(lambda m, P: -max(closed(m, P, k) for k in range(3)))(P_K1)
    check("msp", k1, -(0.9 * 0.7 + 0.1 * 0.1), reference)
    check("aem", k1, -(0.9 * 0.7 + 0.1 * 0.1), reference)


def test_aem_energy(k1):
    reference = per_pixel(lambda m, P: -math.log(sum(math.exp(closed(m, P, k)) for k in range(3))))(P_K1)
    expected = -math.log(math.exp(0.64) + math.exp(0.21) + math.exp(0.095))
    check("aem_energy", k1, expected, reference)


def test_eam_max_score(k1):
    reference = per_pixel(lambda m, P: sum(m[i] * -max(P[i][:3]) for i in range(2)))(P_K1)
    check("eam", k1, 0.9 * -0.7 + 0.1 * -0.5, reference)


def test_eam_energy_uses_known_logits(k1):
    # logits are log P, so logsumexp over the 3 known logits is log(sum of known probabilities)
    reference = per_pixel(lambda m, P: sum(m[i] * -math.log(sum(P[i][:3])) for i in range(2)))(P_K1)
    check("eam_energy", k1, 0.9 * -math.log(0.95) + 0.1 * -math.log(0.9), reference)


def test_rba_sums_tanh_of_closed_set_scores(k1):
    reference = per_pixel(lambda m, P: -sum(math.tanh(closed(m, P, k)) for k in range(3)))(P_K1)
    check("rba", k1, -(math.tanh(0.64) + math.tanh(0.21) + math.tanh(0.095)), reference)


def test_am_and_ahm(k1):
    check("am", k1, -0.9, per_pixel(lambda m, P: -max(m))(P_K1))
    # ahm: best known class of the mask with the largest assignment (mask 1 at (0,0): 0.7)
    reference = per_pixel(lambda m, P: -max(P[max(range(2), key=lambda i: m[i])][:3]))(P_K1)
    check("ahm", k1, -0.7, reference)


def test_uno_and_components_softmax_over_k_plus_2(k2):
    unc = per_pixel(lambda m, P: sum(m[i] * -max(P[i][:3]) for i in range(2)))(P_K2)
    no = per_pixel(lambda m, P: sum(m[i] * P[i][3] for i in range(2)))(P_K2)
    check("uno_unc", k2, 0.9 * -0.6 + 0.1 * -0.2, unc)
    check("uno_no", k2, 0.9 * 0.1 + 0.1 * 0.5, no)
    check("uno", k2, 0.9 * (-0.6 + 0.1) + 0.1 * (-0.2 + 0.5), unc + no)


def test_uno_is_the_sum_of_its_components_on_random_inputs(metadata_factory):
    torch.manual_seed(0)
    metadata = metadata_factory(4, negative=True)
    logits, masks = torch.randn(3, 7, 6) * 3, torch.randn(3, 7, 9, 11) * 3
    parts = [anomaly_score(name, logits, masks, metadata) for name in ("uno", "uno_unc", "uno_no")]
    torch.testing.assert_close(parts[0], parts[1] + parts[2])


@pytest.mark.parametrize("negative", [False, True])
def test_eam_never_exceeds_aem(metadata_factory, negative):
    """EAM (Grcić et al., 2023), eq. 7, with our signs (higher = more anomalous): eam <= msp pixel-wise."""
    torch.manual_seed(1 + negative)
    metadata = metadata_factory(4, negative=negative)
    for _ in range(5):
        logits = torch.randn(2, 10, metadata.architecture.num_outputs) * 4
        masks = torch.randn(2, 10, 16, 16) * 4
        eam = anomaly_score("eam", logits, masks, metadata)
        aem = anomaly_score("msp", logits, masks, metadata)
        assert bool((eam <= aem + 1e-6).all())
        assert bool((eam < aem - 1e-3).any())  # strict somewhere: the inequality is not an identity


def test_uno_scores_need_a_negative_class(k1):
    logits, masks, metadata = k1
    for name in ("uno", "uno_unc", "uno_no"):
        with pytest.raises(AnomaskError, match="needs a negative-objectness class"):
            anomaly_score(name, logits, masks, metadata)


def test_unknown_score_name_lists_the_valid_ones(k1):
    with pytest.raises(AnomaskError, match="unknown anomaly score 'maxlogit'; valid: msp, aem"):
        anomaly_score("maxlogit", *k1)


def test_every_score_is_batch_independent(metadata_factory):
    torch.manual_seed(2)
    metadata = metadata_factory(4, negative=True)
    logits, masks = torch.randn(3, 5, 6) * 3, torch.randn(3, 5, 7, 9) * 3
    for name in ANOMALY_SCORES:
        batched = anomaly_score(name, logits, masks, metadata)
        singles = torch.cat([anomaly_score(name, logits[b : b + 1], masks[b : b + 1], metadata) for b in range(3)])
        torch.testing.assert_close(batched, singles, msg=name)
