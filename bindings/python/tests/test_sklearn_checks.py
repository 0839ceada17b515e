"""scikit-learn's estimator checks on both estimators."""

import functools

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import bpnet

# Features are computed as `bpnet predict` computes them from a CSV of the
# same rows (bit for bit, tested in test_cli_roundtrip.py): numbers are held
# as f32 offsets from an integer near the mean of the first 1,000 rows, so
# another row order can round an input differently in the last f32 bit.
# Measured on the check's data: at most 2.6e-7 absolute, 1.2e-6 relative,
# against the check's rtol of 1e-7.
_ORDER = "f32 rounding of the inputs depends on the rows that choose the CSV offset (<= 1.2e-6 relative)"
_CLASSIFIER_EXPECTED = {"check_methods_sample_order_invariance": _ORDER}
# Checks that cannot apply, with the reason.
_REGRESSOR_EXPECTED = {
    "check_methods_sample_order_invariance": _ORDER,
    # A row predicted alone and within a batch of 20 differs by float32
    # rounding (measured: at most 3.5e-7 absolute); the check demands
    # rtol 1e-7 of float64 results. (The classifier's labels and
    # probabilities happen to pass.)
    "check_methods_subset_invariance": "float32 rounding differs between a row alone and in a batch (<= 3.5e-7)",
}
# bpnet takes numpy arrays (and what converts to them), not array-API
# namespaces; the check itself skips unless SCIPY_ARRAY_API is set.
_NOT_APPLICABLE = {"check_array_api_input": "bpnet takes numpy arrays; no array-API dispatch"}


def _expected(est):
    return _REGRESSOR_EXPECTED if isinstance(est, bpnet.MLPRegressor) else _CLASSIFIER_EXPECTED


def _name(check):
    return check.func.__name__ if isinstance(check, functools.partial) else check.__name__


@parametrize_with_checks(
    [bpnet.MLPClassifier(epochs=40), bpnet.MLPRegressor(epochs=40)],
    expected_failed_checks=_expected,
)
def test_sklearn_compatible(estimator, check):
    reason = _NOT_APPLICABLE.get(_name(check))
    if reason:
        pytest.xfail(reason)
    check(estimator)
