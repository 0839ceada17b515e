"""Inputs: float32/float64, C/Fortran order, read-only arrays, memory maps,
pandas DataFrames, lists; bad inputs raise ValueError/TypeError naming the
problem, never crash the interpreter."""

import re

import numpy as np
import pytest
from sklearn.base import clone

import bpnet
from conftest import blobs, linear

FAST = dict(hidden_layer_sizes=(8,), epochs=3, random_state=1)


@pytest.fixture(scope="module")
def fitted():
    X, y = blobs(n=120, d=4)
    return bpnet.MLPClassifier(**FAST).fit(X, y), X, y


def test_layouts_and_dtypes_give_the_same_predictions(fitted, tmp_path):
    est, X, _ = fitted
    ref = est.predict_proba(X)
    ro = X.copy()
    ro.setflags(write=False)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=X.shape)
    mm[:] = X
    mm.flush()
    mm_ro = np.load(tmp_path / "x.npy", mmap_mode="r")
    for variant in (np.asfortranarray(X), ro, mm_ro, X.tolist(), X[:, ::1]):
        assert np.array_equal(est.predict_proba(variant), ref)
    # A strided view is copied to a contiguous array first.
    wide = np.repeat(X, 2, axis=1)[:, ::2]
    assert np.array_equal(est.predict_proba(wide), ref)
    # float32 input: the same values as float64 of them.
    X32 = X.astype(np.float32)
    assert np.array_equal(est.predict_proba(X32), est.predict_proba(X32.astype(np.float64)))


def test_fit_on_readonly_and_memmap_and_fortran_is_identical(tmp_path):
    X, y = blobs(n=100, d=3, seed=2)
    ref = bpnet.MLPClassifier(**FAST).fit(X, y).coefs()
    np.save(tmp_path / "x.npy", X)
    for variant in (np.load(tmp_path / "x.npy", mmap_mode="r"), np.asfortranarray(X)):
        got = bpnet.MLPClassifier(**FAST).fit(variant, y).coefs()
        assert all(np.array_equal(ref[k], got[k]) for k in ref)


def test_pandas_dataframe_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = linear()
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = bpnet.MLPRegressor(**FAST).fit(df, y)
    assert list(est.feature_names_in_) == ["a", "b", "c", "d"]
    assert np.array_equal(est.predict(df), est.predict(X))


@pytest.mark.parametrize(
    "bad, exc, words",
    [
        (lambda X: X[:, :2], ValueError, "features"),
        (lambda X: X[0], ValueError, "2D array"),
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), ValueError, "NaN"),
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), ValueError, "infinity"),
        (lambda X: X.astype(str).astype(object) + "x", ValueError, "could not convert"),
        (lambda X: X.astype(np.complex128), ValueError, "Complex"),
        (lambda X: X[:0], ValueError, "0 sample"),
    ],
)
def test_bad_prediction_inputs(fitted, bad, exc, words):
    est, X, _ = fitted
    with pytest.raises(exc, match=words):
        est.predict(bad(X))


def test_bad_training_inputs():
    X, y = blobs(n=50, d=3)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        bpnet.MLPClassifier(**FAST).fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        bpnet.MLPClassifier(**FAST).fit(X, y + 0.5)
    with pytest.raises(ValueError, match="one class"):
        bpnet.MLPClassifier(**FAST).fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="NaN"):
        bpnet.MLPRegressor(**FAST).fit(X, np.where(np.arange(len(y)) == 3, np.nan, 1.0 * y))
    with pytest.raises(ValueError, match="at least 2 samples"):
        bpnet.MLPClassifier(**FAST).fit(X[:1], y[:1])
    with pytest.raises(TypeError, match="dense data is required"):
        import scipy.sparse

        bpnet.MLPClassifier(**FAST).fit(scipy.sparse.csr_matrix(X), y)


@pytest.mark.parametrize(
    "param, value, words",
    [
        ("activation", "swish", "activation"),
        ("optimizer", "lbfgs", "optimizer"),
        ("dropout", 1.5, "dropout"),
        ("val_split", 1.0, "val-split"),
        ("schedule", "sometimes", "schedule"),
        ("hidden_layer_sizes", ("a",), "hidden_layer_sizes"),
        ("epochs", -1, "epochs"),
        ("scaling", "log", "scaling"),
        ("bn_momentum", 2.0, "momentum"),
        # These reached the engine as invalid JSON or were silently changed.
        ("lr", float("nan"), "lr must be a positive number"),
        ("lr", 0.0, "lr must be a positive number"),
        ("dropout", float("inf"), "dropout must be a finite number"),
        ("min_delta", float("nan"), "min_delta must be a finite number"),
        ("activation", None, "activation must be a string"),
        ("random_state", 2**64, "random_state must be in"),
        ("hidden_layer_sizes", (1.5,), "hidden_layer_sizes must be a tuple of ints"),
    ],
)
def test_bad_parameters_are_value_errors(param, value, words):
    X, y = blobs(n=60, d=3)
    with pytest.raises(ValueError, match=words):
        bpnet.MLPClassifier(**{**FAST, param: value}).fit(X, y)


def test_impute_accepts_nan():
    X, y = linear()
    X[3, 1] = np.nan
    est = bpnet.MLPRegressor(impute="median", **FAST).fit(X, y)
    assert np.isfinite(est.predict(X)).all()
    with pytest.raises(ValueError, match="NaN"):
        bpnet.MLPRegressor(**FAST).fit(X, y)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        bpnet.load(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model file at all")
    with pytest.raises(ValueError, match="bad.safetensors"):
        bpnet.load(bad)


def _architecture(path):
    """The `architecture` JSON of a model file (safetensors metadata)."""
    import json
    import struct

    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(json.loads(raw[8 : 8 + n])["__metadata__"]["architecture"])


def test_bn_momentum_and_eps_reach_the_network(tmp_path):
    """bn_momentum and bn_eps are stored in the model and change training;
    the defaults are PyTorch's (0.1, 1e-5)."""
    X, y = blobs(n=200, d=4)
    base = dict(FAST, ensemble=1)
    default = bpnet.MLPClassifier(**base).fit(X, y)
    changed = bpnet.MLPClassifier(**base, bn_momentum=0.5, bn_eps=0.25).fit(X, y)
    default.save(tmp_path / "default.safetensors")
    changed.save(tmp_path / "changed.safetensors")
    a, b = _architecture(tmp_path / "default.safetensors"), _architecture(tmp_path / "changed.safetensors")
    assert (a["bn"]["eps"], a["bn"]["momentum"]) == (1e-5, {"torch": 0.1})
    assert (b["bn"]["eps"], b["bn"]["momentum"]) == (0.25, {"torch": 0.5})
    assert not np.array_equal(default.predict_proba(X), changed.predict_proba(X))
    # The file's settings come back with bpnet.load: a clone of the loaded
    # model trains as a clone of the original.
    loaded = bpnet.load(tmp_path / "changed.safetensors")
    assert (loaded.get_params()["bn_momentum"], loaded.get_params()["bn_eps"]) == (0.5, 0.25)
    again = clone(loaded).fit(X, y).predict_proba(X)
    assert np.array_equal(again, clone(changed).fit(X, y).predict_proba(X))


@pytest.mark.parametrize(
    "labels, first, second",
    [(["1", "1.0", "2"], "'1'", "'1.0'"), ([2**53, 2**53 + 1, 7], "'9007199254740992'", "'9007199254740993'")],
)
def test_labels_that_are_one_number_as_text_are_refused(labels, first, second):
    """Labels are read from their texts and numbers are matched by value:
    distinct labels of one value were merged into one class, silently."""
    X, _ = blobs(n=60, d=3)
    y = np.array(labels * 20)
    with pytest.raises(ValueError, match=f"{first} and {second} are the same number"):
        bpnet.MLPClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="the same number"):
        bpnet.MLPClassifier(**FAST).partial_fit(X, y, classes=labels)
    # Labels that differ as numbers, or as text, train as distinct classes.
    assert len(bpnet.MLPClassifier(**FAST).fit(X, np.array(["1", "2", "3"] * 20)).classes_) == 3
    assert len(bpnet.MLPClassifier(**FAST).fit(X, np.array(["1", "1.0", "b"] * 20)).classes_) == 3


@pytest.mark.parametrize(
    "call",
    [
        lambda X: bpnet.MLPRegressor(**FAST).fit(X, X[:, :2], eval_set=(X, X[:, 0])),
        lambda X: bpnet.MLPRegressor(**FAST).fit(X, X[:, 0], eval_set=(X, X[:, :2])),
        lambda X: bpnet.MLPRegressor(**FAST).partial_fit(X, X[:, :2]).partial_fit(X, X[:, 0]),
        lambda X: bpnet.MLPRegressor(**FAST).partial_fit(X, X[:, :2]).partial_fit(X, X),
    ],
)
def test_targets_of_another_width_than_the_models_are_refused(call):
    """Fewer target columns than the model's panicked (index out of bounds,
    a PanicException past `except Exception`); more were silently dropped."""
    X = np.random.default_rng(0).normal(size=(60, 3))
    with pytest.raises(ValueError, match="target columns, but the model was trained on"):
        call(X)


@pytest.mark.parametrize(
    "labels",
    [
        [True, False],
        ["007", "10"],
        ["inf", "-inf"],
        [3, 1],
        ["b", "a"],
        [2.0, 1.0],
        [np.datetime64("2020-01-02"), np.datetime64("2020-01-01")],
        [np.datetime64("2020-01-01T10:00:00.5"), np.datetime64("2019-12-31T23:59:59.25")],
    ],
)
def test_load_gives_back_the_labels_it_was_fitted_on(tmp_path, labels):
    """bpnet.load read labels back by guessing from their texts: booleans
    came back as strings, '007' as 7, 'inf' as a garbage integer, dates as
    strings."""
    X, _ = blobs(n=40, d=3)
    y = np.array(labels * 20)
    est = bpnet.MLPClassifier(**FAST, ensemble=1).fit(X, y)
    est.save(tmp_path / "m.safetensors")
    loaded = bpnet.load(tmp_path / "m.safetensors")
    assert list(loaded.classes_) == list(est.classes_)
    assert loaded.classes_.dtype == est.classes_.dtype or est.classes_.dtype.kind not in "M"
    assert [type(c) for c in loaded.classes_.tolist()] == [type(c) for c in est.classes_.tolist()]
    assert list(loaded.predict(X)) == list(est.predict(X))
    assert loaded.score(X, y) == est.score(X, y)


@pytest.mark.parametrize("shape", [(60,), (60, 1), (60, 2)])
@pytest.mark.parametrize("how", ["fit", "partial_fit"])
def test_load_gives_back_the_shape_of_y_it_was_fitted_on(tmp_path, shape, how):
    """A regressor fitted on y of shape (n, 1) predicts (n, 1); loaded from
    its file it predicted (n,)."""
    X = np.random.default_rng(2).normal(size=(60, 3))
    y = (X[:, :1] * 2.0 + X[:, 1:2]) @ np.ones((1, shape[1] if len(shape) == 2 else 1))
    y = y.ravel() if len(shape) == 1 else y
    est = getattr(bpnet.MLPRegressor(**FAST, ensemble=1), how)(X, y)
    est.save(tmp_path / "m.safetensors")
    loaded = bpnet.load(tmp_path / "m.safetensors")
    assert est.predict(X).shape == shape
    assert loaded.predict(X).shape == shape
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_save_and_to_onnx_replace_other_files_only_when_told(tmp_path):
    """`bpnet` refuses to replace a file of another kind without --overwrite;
    save and to_onnx replaced a CSV or a model silently. Paths may be str,
    bytes or os.PathLike."""
    X, y = blobs(n=60, d=3)
    est = bpnet.MLPClassifier(**FAST, ensemble=1).fit(X, y)
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    model = tmp_path / "m.safetensors"
    est.save(model)
    for call, path in [(est.save, csv), (est.to_onnx, csv), (est.to_onnx, model)]:
        before = path.read_bytes()
        with pytest.raises(FileExistsError, match="overwrite=True"):
            call(path)
        assert path.read_bytes() == before
    est.save(model)  # a model replaces a model
    est.save(str(model).encode())  # bytes paths
    assert bpnet.load(str(model).encode()).n_features_in_ == 3
    est.to_onnx(tmp_path / "m.onnx")
    est.to_onnx(tmp_path / "m.onnx")  # an ONNX model replaces an ONNX model
    est.save(csv, overwrite=True)
    assert bpnet.load(csv).n_features_in_ == 3


@pytest.mark.parametrize("label", ["NA", "", "?", "null", "NaN"])
def test_a_label_that_reads_as_missing_is_refused_naming_it(label):
    """A CSV of these labels holds missing values; the message spoke of a
    missing target at 'line 1' of a file the user never wrote."""
    X, _ = blobs(n=40, d=3)
    with pytest.raises(ValueError, match=re.escape(f"class label {label!r} reads as a missing value")):
        bpnet.MLPClassifier(**FAST).fit(X, np.array([label, "b"] * 20))


def test_partial_fit_with_classes_starts_on_rows_of_one_class():
    """With `classes` given, the first rows need not hold two classes (as
    scikit-learn's partial_fit allows); it said "only one class"."""
    X, y = blobs(n=60, d=3, classes=2)
    est = bpnet.MLPClassifier(**FAST, ensemble=1)
    first = y == y[0]
    est.partial_fit(X[first][:10], y[first][:10], classes=[0, 1])
    assert list(est.classes_) == [0, 1]
    est.partial_fit(X, y)
    assert est.predict_proba(X).shape == (60, 2)
    assert set(est.predict(X)) <= {0, 1}


def test_partial_fit_with_classes_starts_on_a_single_row():
    """One row holds one class: the first call said "only one class" even
    with `classes` given. Without batch normalization a row at a time
    trains; with it, one row is refused as a batch norm cannot train on."""
    X, y = blobs(n=60, d=3, classes=3)
    est = bpnet.MLPClassifier(**FAST, ensemble=1, batch_norm=False)
    for i in range(6):
        est.partial_fit(X[i : i + 1], y[i : i + 1], classes=[0, 1, 2])
    assert list(est.classes_) == [0, 1, 2]
    assert est.predict_proba(X).shape == (60, 3)
    with pytest.raises(ValueError, match="batch normalization needs at least 2 rows"):
        bpnet.MLPClassifier(**FAST, ensemble=1).partial_fit(X[:1], y[:1], classes=[0, 1, 2])


def test_labels_of_a_bpnet_train_model_come_back_as_numbers_where_they_are():
    """A model from `bpnet train` records its labels as texts: all numbers
    and distinct come back as numbers ('+1'/'-1', the libsvm convention, as
    1 and -1), a text with a leading zero keeps every label a string."""
    from bpnet._estimators import _class_array

    assert _class_array(["-1", "+1"]).tolist() == [-1, 1]
    assert _class_array(["0.50", "1e3"]).tolist() == [0.5, 1000.0]
    assert _class_array(["007", "10"]).tolist() == ["007", "10"]
    assert _class_array(["1", "1.0"]).tolist() == ["1", "1.0"]
    assert _class_array(["a", "1"]).tolist() == ["a", "1"]
    assert _class_array(["2", "1"], kind="str").tolist() == ["2", "1"]


def test_a_value_beyond_1e30_is_named_with_its_row_and_short():
    """X holds numbers up to ±1e30 (the CSV reader's limit); beyond, the
    error names the row and column and writes the value in a few
    characters (1e300 took 300 digits)."""
    X, y = blobs(n=40, d=2)
    X[5, 0] = 1e300
    with pytest.raises(ValueError, match=r"row 5, column 'col0': value 1e300 is beyond ±1e30") as e:
        bpnet.MLPClassifier(**FAST).fit(X, y)
    assert len(str(e.value)) < 120


def test_a_bad_target_is_named_by_its_row_in_y_or_eval_set():
    """A target cell's error names y's row, 0-based as X's errors do; it
    said `y: line 50, column 'col2'` (a CSV's line and the name a
    headerless CSV gives the column after X's), and eval_set's y was
    called y. A Series' own name is kept."""
    import pandas as pd

    X, y = blobs(n=50, d=2)
    big = np.r_[np.zeros(49), 1e31]
    with pytest.raises(ValueError, match=r"^y: row 49: value 1e31 is beyond ±1e30$"):
        bpnet.MLPRegressor(**FAST).fit(X, big)
    frame = pd.DataFrame(X, columns=["a", "b"])
    with pytest.raises(ValueError, match=r"^y: row 49, column 'price': value"):
        bpnet.MLPRegressor(**FAST).fit(frame, pd.Series(big, name="price"))
    bad = np.array([0, 1, 7, 0, 1])
    with pytest.raises(ValueError, match=r"^eval_set's y: row 2: class '7' was not seen in training"):
        bpnet.MLPClassifier(**FAST).fit(X, y.astype(int), eval_set=(X[:5], bad))


@pytest.mark.parametrize("value", ["no", "False", None, 2, 0.0])
def test_batch_norm_flags_must_be_booleans(value):
    # bool() had made the string "no" turn batch normalization on.
    X, y = blobs(n=40, d=3)
    for key in ("batch_norm", "bn_after"):
        with pytest.raises(ValueError, match=f"{key} must be True or False"):
            bpnet.MLPClassifier(**FAST, **{key: value}).fit(X, y)
    for off in (np.bool_(False), 0):
        est = bpnet.MLPClassifier(**FAST, batch_norm=off).fit(X, y)
        assert "BatchNorm" not in est.summary_


@pytest.mark.parametrize("labels", [[" 1", "2"], ["1 ", "2"], [" 1", " 2"]])
def test_number_labels_with_spaces_are_refused_naming_them(labels):
    # The engine read ' 1' as 1 and then reported ' 1' as a class not seen.
    X, _ = blobs(n=40, d=3)
    y = np.array([labels[i % 2] for i in range(40)], dtype=object)
    with pytest.raises(ValueError, match="is a number with spaces around it"):
        bpnet.MLPClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="is a number with spaces around it"):
        bpnet.MLPClassifier(**FAST).partial_fit(X, y, classes=labels)
    text = np.array([" a" if i % 2 else "b" for i in range(40)], dtype=object)
    assert list(bpnet.MLPClassifier(**FAST).fit(X, text).classes_) == [" a", "b"]


def test_target_names_are_kept_apart_from_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = linear(n=60, d=3)
    df = pd.DataFrame(X, columns=["a", "b", "target"])
    # A model file naming its target 'a' was scored on X's column 'a' by
    # `bpnet eval`: y named as a feature (df.a.shift(-1)) becomes 'a_'.
    named = bpnet.MLPRegressor(**FAST).fit(df, pd.Series(y, name="a"))
    assert named._native.target_names == ["a_"]
    est = bpnet.MLPRegressor(**FAST).fit(df, y)
    est.save(tmp_path / "m.safetensors")
    assert bpnet.load(tmp_path / "m.safetensors")._native.target_names == ["target_"]
    clf = bpnet.MLPClassifier(**FAST).fit(df, (y > np.median(y)).astype(int))
    assert clf._native.target_names == ["target_"]


def test_new_rows_are_read_with_the_fitted_imputation_not_a_later_parameter():
    # set_params(impute=...) after fit had changed whether predict took NaN.
    X, y = linear(n=60, d=3)
    Xn = X.copy()
    Xn[0, 1] = np.nan
    est = bpnet.MLPRegressor(**FAST, impute="mean").fit(Xn, y)
    want = est.predict(Xn[:2])
    est.set_params(impute="none")
    assert np.array_equal(est.predict(Xn[:2]), want)
    plain = bpnet.MLPRegressor(**FAST).fit(X, y).set_params(impute="mean")
    with pytest.raises(ValueError, match="NaN"):
        plain.predict(Xn[:2])


def test_a_refit_reads_eval_set_with_its_own_imputation():
    # The old model's imputation had refused NaN in a refit's eval_set.
    X, y = linear(n=60, d=3)
    Xn = X.copy()
    Xn[0, 1] = np.nan
    est = bpnet.MLPRegressor(**FAST).fit(X, y).set_params(impute="mean")
    est.fit(Xn, y, eval_set=(Xn[:20], y[:20]))
    assert np.isfinite(est.predict(Xn[:2])).all()


def test_a_missing_class_label_is_refused_naming_its_row():
    # numpy's sort of the labels had failed with "'<' not supported
    # between instances of 'NoneType' and 'str'".
    X, _ = blobs(n=40, d=3)
    y = ["a" if i % 2 else "b" for i in range(40)]
    y[17] = None
    y[30] = None
    words = r"y holds a missing class label \(None\) at row 17 \(2 in all\)"
    with pytest.raises(ValueError, match=words):
        bpnet.MLPClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match=words):
        bpnet.MLPClassifier(**FAST).partial_fit(X, y, classes=["a", "b"])
    good = [v if v is not None else "a" for v in y]
    ey = list(good[:10])
    ey[3] = None
    with pytest.raises(ValueError, match=r"eval_set's y holds a missing class label \(None\) at row 3"):
        bpnet.MLPClassifier(**FAST).fit(X, good, eval_set=(X[:10], ey))
    assert list(bpnet.MLPClassifier(**FAST).fit(X, good).classes_) == ["a", "b"]


@pytest.mark.parametrize("Est", [bpnet.MLPClassifier, bpnet.MLPRegressor])
def test_an_output_past_float32_is_refused_naming_its_row(Est):
    """A value X may hold (within ±1e30) in a column whose training spread
    was tiny grows past float32 once scaled; the network's output is then
    NaN or infinite. predict, predict_proba and score refuse the row, as
    `bpnet predict` does; they had returned NaN (and predict a class), and
    the default ensemble's average an even split."""
    rng = np.random.default_rng(0)
    X = np.c_[rng.integers(-3, 4, 200) * 1e-9, rng.integers(-2, 3, 200)].astype(np.float64)
    y = (X[:, 0] * 1e9 + X[:, 1] > 0).astype(int)
    est = Est(**FAST).fit(X, y)
    new = np.array([[1e-9, 0.0], [2e-9, 1.0], [5e29, 0.0]])
    assert np.isfinite(est.predict(new[:2])).all()
    calls = [est.predict, lambda X: est.score(X, [0, 1, 1])]
    if Est is bpnet.MLPClassifier:
        calls.append(est.predict_proba)
    for call in calls:
        with pytest.raises(ValueError, match=r"^X: row 2: the network's output is (NaN|infinite), so no prediction"):
            call(new)


@pytest.mark.parametrize("Est", [bpnet.MLPClassifier, bpnet.MLPRegressor])
def test_early_stopping_without_validation_rows_is_refused(Est):
    """patience or monitor of the user's with val_split=0 and no eval_set
    is refused, as `bpnet train` refuses it (it was ignored: every epoch
    trained); the defaults, patience=0 and an eval_set are taken. A refused
    refit leaves the fitted model."""
    X, y = blobs(n=60, d=3)
    base = dict(hidden_layer_sizes=(4,), epochs=3, ensemble=1, random_state=0, val_split=0.0)
    est = Est(**base).fit(X, y)
    for bad in (dict(patience=5), dict(monitor="val_metric")):
        with pytest.raises(ValueError, match=r"early stopping watches validation rows, and val_split=0") as e:
            est.set_params(**bad).fit(X, y)
        assert str(e.value).startswith(next(iter(bad)))
        assert np.isfinite(est.predict(X)).all()
        est.fit(X, y, eval_set=(X[:10], y[:10]))
        est.set_params(patience=20, monitor="val_loss")
    Est(**base, patience=0).fit(X, y)


def test_unclear_parameter_and_eval_set_errors_name_the_problem():
    """Errors that had said "'' in '3,-1' is not a positive integer",
    "could not convert string to float: 'x'" and "too many values to
    unpack" name the parameter and what is wrong."""
    X, y = blobs(n=40, d=2)
    with pytest.raises(ValueError, match=r"^hidden_layer_sizes must hold widths of at least 1, got -1 in \(3, -1\)$"):
        bpnet.MLPClassifier(hidden_layer_sizes=(3, -1)).fit(X, y)
    with pytest.raises(ValueError, match=r"^bn_momentum must be a finite number, got 'x'$"):
        bpnet.MLPClassifier(bn_momentum="x").fit(X, y)
    for Est in (bpnet.MLPClassifier, bpnet.MLPRegressor):
        with pytest.raises(ValueError, match=r"^eval_set must be a pair \(X_val, y_val\), got a ndarray$"):
            Est(**FAST).fit(X, y, eval_set=X)
        with pytest.raises(ValueError, match=r"got a tuple of 3 items"):
            Est(**FAST).fit(X, y, eval_set=(X, y, y))
    # A target past ±1e30 is written short, as X's values are.
    with pytest.raises(ValueError, match=r"^y: row 0: value 1\.2e300 is beyond ±1e30$"):
        bpnet.MLPRegressor(**FAST).fit(X, np.r_[1.2e300, np.zeros(39)])


def test_a_divergence_advises_in_parameter_names():
    """A diverged fit named the command line's flags (--lr, --on-nan
    skip-batch, even with on_nan='skip-batch' set) and said the model
    keeps weights, while the estimator is left unfitted."""
    X, y = blobs(n=60, d=3)
    est = bpnet.MLPClassifier(hidden_layer_sizes=(4,), epochs=5, ensemble=1, lr=1e30, optimizer="sgd", batch_norm=False)
    for on_nan in ("stop", "skip-batch"):
        with pytest.raises(RuntimeError, match="training diverged") as e:
            est.set_params(on_nan=on_nan).fit(X, y)
        msg = str(e.value)
        assert "--" not in msg and "keeps the weights" not in msg, msg
        assert "(lr)" in msg and "clip_grad_norm=1.0" in msg, msg
        assert ("on_nan='skip-batch'" in msg) == (on_nan == "stop" and "give non-finite outputs on" not in msg), msg
