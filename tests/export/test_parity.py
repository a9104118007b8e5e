"""Parity rules of `anomask export --check`."""

import numpy as np

from anomask.export.parity import compare_outputs, parity_report


def test_rules_pass_and_fail_at_their_limits():
    ids = np.zeros((1, 100, 100), np.uint8)
    score = np.linspace(-1, 0, 10000, dtype=np.float32).reshape(1, 100, 100)
    near = {"semantic": ids.copy(), "anomaly": score + 9e-4}
    near["semantic"].flat[:10] = 1  # 99.9 % equal
    results = {r.name: r for r in compare_outputs({"semantic": ids, "anomaly": score}, near)}
    assert results["semantic"].passed and results["anomaly"].passed
    far = {"semantic": ids.copy(), "anomaly": score + 2e-3}
    far["semantic"].flat[:11] = 1
    results = compare_outputs({"semantic": ids, "anomaly": score}, far)
    assert not any(r.passed for r in results)
    assert "FAIL" in parity_report(results) and "99.890 % equal" in parity_report(results)


def test_float16_outputs_may_differ_by_their_own_rounding_step():
    energy = np.array([-12.3, -8.1, -0.25], np.float16)  # float16 step at 12 is 0.0078
    stepped = energy + np.spacing(energy)
    assert compare_outputs({"anomaly": energy}, {"anomaly": stepped})[0].passed
    assert not compare_outputs({"anomaly": energy}, {"anomaly": stepped + np.float16(0.02)})[0].passed


def test_missing_or_reshaped_outputs_fail():
    ref = {"semantic": np.zeros((1, 4, 4), np.uint8), "anomaly": np.zeros((1, 4, 4), np.float32)}
    results = compare_outputs(ref, {"semantic": np.zeros((1, 4, 5), np.uint8)})
    assert [r.passed for r in results] == [False, False]
    assert "missing" in parity_report(results)
