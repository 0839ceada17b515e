"""Python and the command line share model files and training: a model
saved in Python predicts the same through `bpnet predict`; a `bpnet train`
model loads in Python and predicts the same; and the same data, options and
seed train the same weights, bit for bit. With their defaults both train an
ensemble of 5 networks on these small tables; `--ensemble 1` / `ensemble=1`
one."""

import csv
import io
import json

import numpy as np
import pytest

import bpnet
from conftest import blobs, linear, write_csv, write_rows

OPTS = dict(hidden_layer_sizes=(16, 8), epochs=7, batch_size=20, random_state=3, patience=3)
CLI_OPTS = ["--hidden", "16,8", "--epochs", "7", "--batch-size", "20", "--seed", "3", "--patience", "3"]


def _predict_csv(run_cli, model, data):
    rows = list(csv.reader(io.StringIO(run_cli("predict", "--model", model, "--data", data))))
    return rows[0], rows[1:]


def _same_weights(a, b, networks):
    ta, tb = a.coefs(), b.coefs()
    assert ta.keys() == tb.keys()
    assert a.n_networks_ == b.n_networks_ == networks
    assert sum(k.endswith("layers.0.weight") for k in ta) == networks
    for k in ta:
        assert ta[k].tobytes() == tb[k].tobytes(), f"{k} differs"


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_classifier_weights_match_bpnet_train(tmp_path, run_cli, order, dtype):
    X, y = blobs(n=203, d=5)
    X = X.astype(dtype)
    data = tmp_path / "train.csv"
    write_csv(data, X.astype(np.float64), y)
    cli_model = tmp_path / "cli.safetensors"
    run_cli("train", "--data", data, "--out", cli_model, "--quiet", *CLI_OPTS)
    est = bpnet.MLPClassifier(**OPTS).fit(np.asarray(X, order=order), y)
    _same_weights(est, bpnet.load(cli_model), 5)
    # The same run: the same per-epoch losses as the CLI's history file.
    cli_history = json.loads((tmp_path / "cli.history.json").read_text())
    cli_losses = [r["train_loss"] for r in _records(cli_history)]
    assert est.loss_curve_ == cli_losses
    assert [r["val_loss"] for r in est.history_] == [r["val_loss"] for r in _records(cli_history)]
    # The CLI's model file carries its history: loaded, history_ and
    # loss_curve_ are those of its history file (they were empty).
    loaded = bpnet.load(cli_model)
    assert loaded.history_ == _records(cli_history)
    assert loaded.loss_curve_ == cli_losses and loaded.n_iter_ == len(cli_losses) > 0


def _records(history):
    return history["epochs"] if isinstance(history, dict) else history


@pytest.mark.parametrize("networks", [1, 3])
def test_regressor_weights_match_bpnet_train(tmp_path, run_cli, networks):
    X, y = linear()
    data = tmp_path / "train.csv"
    write_csv(data, X, y)
    cli_model = tmp_path / "cli.safetensors"
    run_cli("train", "--data", data, "--out", cli_model, "--quiet", "--task", "regress", "--optimizer", "sgd",
            "--lr", "0.01", "--ensemble", str(networks), *CLI_OPTS)
    est = bpnet.MLPRegressor(optimizer="sgd", lr=0.01, ensemble=networks, **OPTS).fit(X, y)
    _same_weights(est, bpnet.load(cli_model), networks)
    # Bit for bit, so the averaged predictions are the same too.
    assert np.array_equal(est.predict(X), bpnet.load(cli_model).predict(X))


def _same_probabilities(rows, proba):
    """The CLI prints the float32 softmax as the shortest text of each
    value; Python renormalizes it in float64 so that its rows sum to 1
    there: the two agree within that renormalization (about 1e-7) and the
    bound the 6 decimals printed before needed (5e-7 more)."""
    printed = np.array([r[1:] for r in rows], dtype=np.float64)
    assert printed.shape == proba.shape
    assert np.abs(printed - proba).max() <= 7e-7


def test_python_model_predicts_the_same_in_bpnet_predict(tmp_path, run_cli):
    X, y = blobs(n=150, d=4, classes=3, seed=5)
    est = bpnet.MLPClassifier(**OPTS).fit(X, y)
    model = tmp_path / "py.safetensors"
    est.save(model)
    new = tmp_path / "new.csv"
    # A headerless model (numpy input) reads headerless files.
    write_rows(new, X[:40])
    head, rows = _predict_csv(run_cli, model, new)
    assert head == ["prediction"] + [f"p_{c}" for c in est.classes_]
    assert [int(r[0]) for r in rows] == list(est.predict(X[:40]))
    _same_probabilities(rows, est.predict_proba(X[:40]))
    out = run_cli("eval", "--model", model, "--data", _labelled(tmp_path, X[:40], y[:40]))
    acc = float(out.split("accuracy ")[1].split("%")[0])
    assert acc == pytest.approx(100 * est.score(X[:40], y[:40]), abs=0.006)


def _labelled(tmp_path, X, y):
    p = tmp_path / "eval.csv"
    write_csv(p, X, y, header=False)
    return p


def test_regression_predictions_identical_in_bpnet_predict(tmp_path, run_cli):
    X, y = linear(seed=4)
    est = bpnet.MLPRegressor(**OPTS).fit(X, y)
    model = tmp_path / "r.safetensors"
    est.save(model)
    new = tmp_path / "new.csv"
    write_rows(new, X[:30])
    _, rows = _predict_csv(run_cli, model, new)
    assert np.array_equal(np.array([float(r[0]) for r in rows]), est.predict(X[:30]))
    # 1030 rows: bpnet predict runs them in groups of 1024 and 6 (a group
    # of fewer than 8 rows is padded to 8); Python runs them alike, bit for
    # bit (in one call the last 6 rows' last digits once differed).
    many = np.tile(X, (6, 1))[:1030]
    write_rows(new, many)
    _, rows = _predict_csv(run_cli, model, new)
    assert np.array_equal(np.array([float(r[0]) for r in rows]), est.predict(many))


@pytest.mark.parametrize("networks", [1, 5])
def test_cli_model_loads_in_python_and_predicts_the_same(tmp_path, run_cli, networks):
    X, y = blobs(n=180, d=3, classes=4, seed=9)
    data = tmp_path / "train.csv"
    write_csv(data, X, y)
    model = tmp_path / "cli.safetensors"
    # 5 networks is bpnet train's default on this table; no --ensemble given.
    more = ["--ensemble", "1"] if networks == 1 else []
    run_cli("train", "--data", data, "--out", model, "--quiet", *CLI_OPTS, *more)
    est = bpnet.load(model)
    assert isinstance(est, bpnet.MLPClassifier)
    assert est.n_networks_ == networks and est.ensemble == networks
    assert list(est.feature_names_in_) == ["f0", "f1", "f2"]
    assert est.hidden_layer_sizes == (16, 8) and est.random_state == 3
    head, rows = _predict_csv(run_cli, model, data)
    assert head == ["prediction", "p_0", "p_1", "p_2", "p_3"]
    assert [int(r[0]) for r in rows] == list(est.predict(X))
    _same_probabilities(rows, est.predict_proba(X))
    assert list(est.classes_) == [0, 1, 2, 3]


def test_dataframe_model_matches_columns_by_name_in_bpnet_predict(tmp_path, run_cli):
    pd = pytest.importorskip("pandas")
    X, y = linear(seed=6)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = bpnet.MLPRegressor(**OPTS).fit(df, pd.Series(y, name="price"))
    model = tmp_path / "df.safetensors"
    est.save(model)
    new = tmp_path / "new.csv"
    write_rows(new, df[["d", "c", "b", "a"]].iloc[:10].to_numpy(), header=["d", "c", "b", "a"])
    head, rows = _predict_csv(run_cli, model, new)
    assert head == ["price"]
    assert np.array_equal(np.array([float(r[0]) for r in rows]), est.predict(df.iloc[:10]))


def test_an_ensemble_averages_its_members_probabilities(tmp_path, run_cli):
    # Each member saved alone (ensemble=1 with the member's seed) predicts
    # what that member of the ensemble predicts; the ensemble's
    # probabilities are their mean (float32 rounding).
    X, y = blobs(n=160, d=4, classes=3, seed=4)
    # No validation split: it is drawn once, from the first seed.
    opts = dict(hidden_layer_sizes=(8,), epochs=4, batch_size=16, patience=0, val_split=0.0)
    ens = bpnet.MLPClassifier(ensemble=3, random_state=10, **opts).fit(X, y)
    singles = [bpnet.MLPClassifier(ensemble=1, random_state=10 + k, **opts).fit(X, y) for k in range(3)]
    for k, s in enumerate(singles):
        prefix = "" if k == 0 else f"ensemble.{k}."
        for name, w in s.coefs().items():
            assert w.tobytes() == ens.coefs()[prefix + name].tobytes()
    mean = np.mean([s.predict_proba(X) for s in singles], axis=0)
    assert np.allclose(ens.predict_proba(X), mean, atol=2e-6)
    assert not np.allclose(singles[0].predict_proba(X), mean, atol=1e-3)
    assert any("ensemble of 3 networks" in n for n in ens.notes_)


def test_label_smoothing_trains_as_the_command_line_and_is_refused_for_regression(tmp_path, run_cli):
    X, y = blobs(n=150, d=4, classes=3, seed=6)
    data = tmp_path / "train.csv"
    write_csv(data, X, y)
    cli_model = tmp_path / "cli.safetensors"
    run_cli("train", "--data", data, "--out", cli_model, "--quiet", "--label-smoothing", "0.2", "--ensemble", "1",
            *CLI_OPTS)
    est = bpnet.MLPClassifier(label_smoothing=0.2, ensemble=1, **OPTS).fit(X, y)
    _same_weights(est, bpnet.load(cli_model), 1)
    assert bpnet.load(cli_model).label_smoothing == 0.2
    plain = bpnet.MLPClassifier(ensemble=1, **OPTS).fit(X, y)
    assert plain.loss_curve_ != est.loss_curve_
    Xr, yr = linear()
    with pytest.raises(ValueError, match="classification"):
        bpnet.MLPRegressor(label_smoothing=0.1, **OPTS).fit(Xr, yr)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        bpnet.MLPClassifier(label_smoothing=1.0, **OPTS).fit(X, y)


def test_a_tuned_blend_loads_in_python_predicts_as_the_cli_and_pickles(tmp_path, run_cli):
    # `bpnet tune --blend-rule equal` writes every re-scored trial, the
    # portfolio's linear one among them: networks of several architectures
    # in one file (format 2). Python predicts what `bpnet predict` does, and
    # a pickled or re-saved copy keeps every member's architecture.
    import pickle

    X, y = blobs(n=150, d=3, classes=3, seed=12)
    data = tmp_path / "train.csv"
    write_csv(data, X, y)
    model = tmp_path / "tuned.safetensors"
    run_cli("tune", "--data", data, "--trials", "6", "--cv", "3", "--epochs", "5", "--out", model, "--quiet",
            "--blend-rule", "equal")
    assert "blend of" in run_cli("inspect", model)
    est = bpnet.load(model)
    assert est.n_networks_ >= 8  # at least the portfolio's 4 trials, 2 networks each
    head, rows = _predict_csv(run_cli, model, data)
    assert [int(r[0]) for r in rows] == list(est.predict(X))
    _same_probabilities(rows, est.predict_proba(X))
    again = pickle.loads(pickle.dumps(est))
    assert np.array_equal(again.predict_proba(X), est.predict_proba(X))
    copy = tmp_path / "copy.safetensors"
    est.save(copy)
    _, rows2 = _predict_csv(run_cli, copy, data)
    assert rows2 == rows
