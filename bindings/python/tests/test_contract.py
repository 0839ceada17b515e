"""scikit-learn's contract where the engine's own conventions differ: the
order of ``classes_``, probabilities that sum to 1 in float64, the thread
count a user set, a refused refit, labels matched by value."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.metrics import get_scorer, log_loss, roc_auc_score

import bpnet
from conftest import blobs

FAST = dict(batch_size=32, hidden_layer_sizes=(16,), epochs=30, random_state=0, ensemble=1)


def _labels_9_10():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = np.where(X[:, 0] + X[:, 1] > 0, "10", "9")
    return X, y


def test_classes_follow_np_unique_for_labels_that_look_like_numbers(tmp_path):
    """The engine orders '9' before '10' (as numbers); classes_ and the
    columns of predict_proba follow np.unique ('10' before '9'), as the
    scorers assume (roc_auc read 0.001 for a model of accuracy 0.98)."""
    X, y = _labels_9_10()
    c = bpnet.MLPClassifier(**FAST).fit(X, y)
    assert list(c.classes_) == list(np.unique(y)) == ["10", "9"]
    p = c.predict_proba(X)
    assert np.array_equal(c.classes_[p.argmax(axis=1)], c.predict(X))
    assert c.score(X, y) > 0.9
    auc = get_scorer("roc_auc")(c, X, y)
    assert auc > 0.9, auc
    assert auc == pytest.approx(roc_auc_score(y == "9", p[:, 1]))
    for again in (pickle.loads(pickle.dumps(c)), bpnet.load(_saved(c, tmp_path))):
        assert list(again.classes_) == ["10", "9"]
        assert np.array_equal(again.predict_proba(X), p)
        assert np.array_equal(again.predict(X), c.predict(X))


def _saved(est, tmp_path):
    path = tmp_path / "m.safetensors"
    est.save(path, overwrite=True)
    return path


def test_three_numeric_text_classes_score_as_their_accuracy():
    X, y = blobs(n=300, classes=3, seed=4)
    names = np.array(["1", "2", "10"])[y]
    c = bpnet.MLPClassifier(**FAST).fit(X, names)
    assert list(c.classes_) == ["1", "10", "2"]
    assert c.score(X, names) > 0.9
    assert get_scorer("roc_auc_ovr")(c, X, names) > 0.95
    assert get_scorer("neg_log_loss")(c, X, names) > -0.5


def test_probabilities_sum_to_one_in_float64():
    """The float32 softmax cast to float64 summed to 1 within 1.3e-7, and
    log_loss warned on every call."""
    X, y = blobs(n=240, classes=3, seed=2)
    c = bpnet.MLPClassifier(**FAST).fit(X, y)
    p = c.predict_proba(X)
    assert p.dtype == np.float64
    assert np.abs(p.sum(axis=1) - 1.0).max() < 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_loss(y, p)
        get_scorer("neg_log_loss")(c, X, y)


def test_threads_none_keeps_the_count_set_for_the_process():
    X, y = blobs(n=120, classes=2, seed=1)
    try:
        bpnet.set_threads(1)
        bpnet.MLPClassifier(**FAST).fit(X, y)
        assert bpnet.threads() == 1
        bpnet.MLPClassifier(**dict(FAST, threads=2)).fit(X, y)
        assert bpnet.threads() in (1, 2)  # 2, or 1 on a one-core machine
        bpnet.MLPClassifier(**FAST).fit(X, y)
        assert bpnet.threads() == 1, "threads=None takes set_threads' count again"
        with pytest.raises(ValueError, match="positive int"):
            bpnet.set_threads(True)
        with pytest.raises(ValueError, match="positive int"):
            bpnet.MLPClassifier(**dict(FAST, threads=True)).fit(X, y)
    finally:
        bpnet._estimators._THREADS_SET_BY_USER[0] = None
        bpnet.set_threads(bpnet._bpnet.available_cores())
        bpnet._estimators._THREADS_SET_BY_USER[0] = None


def test_a_refused_refit_leaves_no_half_old_model():
    """A refit that fails leaves the estimator unfitted: it kept the old
    network beside n_features_in_ of the new X, and neither width predicted."""
    from sklearn.exceptions import NotFittedError

    X, y = blobs(n=120, classes=2, seed=3)
    c = bpnet.MLPClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError):
        c.set_params(activation="foo").fit(X[:, :3], y)
    with pytest.raises(NotFittedError):
        c.predict(X)
    # Every fitted attribute went with the network: classes_ and history_
    # of the old model stayed, so check_is_fitted (and a Pipeline) took
    # the estimator for fitted while predict refused.
    from sklearn.utils.validation import check_is_fitted

    bad = X.copy()
    bad[0, 0] = np.nan
    for est, target in ((bpnet.MLPClassifier(**FAST), y), (bpnet.MLPRegressor(**FAST), X[:, 0] + X[:, 1])):
        est.fit(X, target)
        check_is_fitted(est)
        with pytest.raises(ValueError):
            est.fit(bad, target)
        with pytest.raises(NotFittedError):
            check_is_fitted(est)
        left = [k for k in vars(est) if k.endswith("_") or k in ("_native", "_class_order", "_y_ndim")]
        assert left == [], left
        with pytest.raises(NotFittedError):
            est.predict(X)
        # A good refit afterwards works.
        assert est.fit(X, target).predict(X).shape == (X.shape[0],)
    # A parameter refused before the data leaves the fitted model whole.
    c = bpnet.MLPClassifier(**FAST).fit(X, y)
    before = c.predict(X)
    with pytest.raises(ValueError):
        c.set_params(threads=0).fit(X[:, :3], y)
    assert c.n_features_in_ == X.shape[1]
    assert np.array_equal(c.predict(X), before)


def test_partial_fit_matches_labels_by_value():
    X, y = blobs(n=120, classes=2, seed=5)
    c = bpnet.MLPClassifier(**FAST).partial_fit(X, y, classes=[0.0, 1.0])
    c.partial_fit(X, y)
    assert c.predict(X).dtype == np.float64
    # Float labels named '0.0' (the engine read them as the number 0 and
    # named the class '0': a KeyError).
    f = bpnet.MLPClassifier(**FAST).partial_fit(X, y.astype(float), classes=[0.0, 1.0, 2.5])
    assert list(f.classes_) == [0.0, 1.0, 2.5]
    with pytest.raises(ValueError, match="not in classes"):
        bpnet.MLPClassifier(**FAST).partial_fit(X, y.astype(str), classes=[0, 1])


def test_experiment_settings_out_of_range_are_value_errors(tmp_path):
    """A negative seed or step count raised OverflowError from the engine."""
    for bad in (dict(seed=-1), dict(steps=-1), dict(seed=2**64)):
        with pytest.raises(ValueError, match="whole number from 0"):
            bpnet.experiment.bn_mnist(out=tmp_path / "x", **bad)


def test_a_finished_experiment_leaves_no_marker(tmp_path):
    """A run writes INCOMPLETE.md first and removes it last (as the CLI)."""
    out = tmp_path / "run"
    r = bpnet.experiment.bn_mnist(out=out, steps=4, eval_every=2, train_limit=300, test_limit=100)
    assert r.report.is_file()
    assert not (out / "INCOMPLETE.md").exists()
