"""scikit-learn estimators over the bpnet engine.

Training goes through the same code as ``bpnet train`` (preprocessing
fitted on the training rows, the validation split, the network, optimizer,
schedule and early stopping), so the same data, parameters and seed give
the same weights, bit for bit, as ``bpnet train`` on the equivalent CSV file.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import _bpnet

# Every `bpnet train` option that shapes training, as a constructor
# parameter, with the command-line default (see `bpnet train --help`).
_COMMON_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100, 100)
        Widths of the hidden layers (``--hidden 100,100``); ``()`` for none.
    activation : str, default="relu"
        Hidden activation: sigmoid, tanh, relu, leaky_relu[:slope],
        elu[:alpha], gelu, softplus, identity (``--activation``).
    batch_norm : bool, default=True
        Batch normalization in every hidden block (``--batch-norm`` /
        ``--no-batch-norm``).
    bn_after : bool, default=False
        Put batch normalization after the activation instead of before it
        (``--bn-after``; before is the paper's placement).
    bn_momentum : float, default=0.1
        Running-average momentum of batch normalization, PyTorch's
        convention: ``running = (1 - m) * running + m * batch`` (the command
        line always uses 0.1).
    bn_eps : float, default=1e-5
        Added to the batch variance before the square root (the command line
        always uses 1e-5).
    dropout : float, default=0.0
        Dropout rate after each hidden block (``--dropout``).
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy loss, in [0, 1): each row's
        target is ``1 - e`` on its class plus ``e / n_classes`` on every
        class (``--label-smoothing``; classification only; the training
        loss, not the validation loss).
    init : str, default="he_normal"
        Weight initialization: normal[:std], xavier_uniform, xavier_normal,
        he_uniform, he_normal, torch (``--init``).
    optimizer : str, default="adam"
        gd (full batch), sgd, momentum, nesterov, adam, adamw, rmsprop,
        adagrad (``--optimizer``).
    lr : float or None, default=None
        Learning rate; None takes the optimizer's default (sgd/gd 0.5,
        momentum/nesterov 0.05, adam/adamw/rmsprop 0.001, adagrad 0.01).
    momentum : float, default=0.9
        Momentum of the momentum and nesterov optimizers.
    weight_decay : float, default=0.0
        L2 weight decay (decoupled for adamw), applied as given: 0.0 trains
        without decay, adamw included (the command line's adamw takes 0.01
        when ``--weight-decay`` is not given, as PyTorch's AdamW).
    batch_size : int, default=128
        Rows per mini-batch (at most the training rows are used).
    epochs : int, default=100
        Passes over the training set (``--epochs``).
    steps : int, default=0
        Train for this many optimizer steps instead (0: use ``epochs``).
    schedule : str, default="constant"
        Learning-rate schedule: constant, step[:every[:gamma]],
        exponential[:gamma], cosine[:warmup_steps], plateau[:patience[:factor]].
    val_split : float, default=0.1
        Fraction of the training rows held out (stratified for classes) for
        validation, early stopping and ``history_`` (0: none). Ignored when
        ``fit`` gets an ``eval_set``.
    patience : int, default=20
        Early-stopping patience (0: off; needs validation data): epochs
        without improvement tolerated; training stops at the end of the next
        one without.
        The weights of the best epoch are restored.
    min_delta : float, default=0.0
        Smallest improvement of the monitored value that resets the patience.
    monitor : str, default="val_loss"
        ``val_loss`` or ``val_metric`` (accuracy, or R² for regression).
    scaling : str, default="auto"
        Feature scaling fitted on the training rows: auto (z-score), zscore,
        minmax, none.
    impute : str, default="none"
        Fill missing values (NaN) in X: none (NaN is an error), mean, median.
    clip_grad_norm : float, default=0.0
        Rescale gradients to at most this global L2 norm (0: off).
    on_nan : str, default="stop"
        On a non-finite loss or gradient: stop (RuntimeError, and the
        estimator is left unfitted) or skip-batch (the batch is skipped).
    ensemble : int, default=0
        Networks trained on the same rows from seeds ``random_state``,
        ``random_state + 1``, ... whose predictions are averaged
        (probabilities for a classifier, values for regression;
        ``--ensemble``). 0, the default: 5 when at most 50,000 rows are
        trained on (after the validation split), else 1, as ``bpnet train``
        chooses; one network in ``partial_fit``, whose rows come in parts.
    random_state : int, RandomState or None, default=0
        Seed of the splits, weights, batch order and dropout (``--seed``).
        None draws a seed from numpy's global generator.
    threads : int or None, default=None
        Threads bpnet uses (``--threads``; process-wide); None: the count
        given to ``bpnet.set_threads``, or every core if it was not called.
        Results do not depend on it.

    Attributes
    ----------
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : ndarray of str
        Column names, when X was a pandas DataFrame with string names.
    history_ : list of dict
        One record per epoch: epoch, step, train_loss, val_loss, val_metric
        (accuracy or R² of the standardized targets), lr, seconds.
    loss_curve_ : list of float
        Training loss of every epoch.
    validation_scores_ : list of float or None
        ``val_metric`` of every epoch, when there was validation data.
    best_epoch_ : int
        The epoch whose weights the model holds (``history_``,
        ``loss_curve_`` and ``best_epoch_`` are those of the first network).
    n_networks_ : int
        Networks whose predictions are averaged (1: a single network).
    n_iter_ : int
        Epochs trained.
    notes_ : list of str
        Notes from preprocessing and training.
"""

_TRAIN_KEYS = (
    "activation", "batch_norm", "bn_after", "dropout", "label_smoothing", "init", "optimizer", "momentum", "weight_decay",
    "batch_size", "epochs", "steps", "schedule", "val_split", "patience", "min_delta", "monitor", "scaling",
    "impute", "clip_grad_norm", "on_nan", "ensemble",
)

# Fitted state outside scikit-learn's `name_` convention.
_PRIVATE_FITTED = ("_native", "_fitted_impute", "_class_order", "_y_ndim")


class _BaseMLP(BaseEstimator):
    """Shared by MLPClassifier and MLPRegressor."""

    _task = "auto"

    def __init__(
        self,
        hidden_layer_sizes=(100, 100),
        activation="relu",
        batch_norm=True,
        bn_after=False,
        bn_momentum=0.1,
        bn_eps=1e-5,
        dropout=0.0,
        label_smoothing=0.0,
        init="he_normal",
        optimizer="adam",
        lr=None,
        momentum=0.9,
        weight_decay=0.0,
        batch_size=128,
        epochs=100,
        steps=0,
        schedule="constant",
        val_split=0.1,
        patience=20,
        min_delta=0.0,
        monitor="val_loss",
        scaling="auto",
        impute="none",
        clip_grad_norm=0.0,
        on_nan="stop",
        ensemble=0,
        random_state=0,
        threads=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.batch_norm = batch_norm
        self.bn_after = bn_after
        self.bn_momentum = bn_momentum
        self.bn_eps = bn_eps
        self.dropout = dropout
        self.label_smoothing = label_smoothing
        self.init = init
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.steps = steps
        self.schedule = schedule
        self.val_split = val_split
        self.patience = patience
        self.min_delta = min_delta
        self.monitor = monitor
        self.scaling = scaling
        self.impute = impute
        self.clip_grad_norm = clip_grad_norm
        self.on_nan = on_nan
        self.ensemble = ensemble
        self.random_state = random_state
        self.threads = threads

    # ----- configuration -------------------------------------------------

    def _config(self):
        """The `bpnet train` configuration of these parameters, as JSON."""
        self._bn_params()
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        try:
            if not all(
                not isinstance(w, bool) and isinstance(w, numbers.Real) and float(w).is_integer() for w in sizes
            ):
                raise TypeError
            hidden = ",".join(str(int(w)) for w in sizes)
        except (TypeError, ValueError) as e:
            raise ValueError(f"hidden_layer_sizes must be a tuple of ints, got {sizes!r}") from e
        if any(w < 1 for w in sizes):
            # -1 had reached the engine as "3,-1", read as "3" and "" apart.
            bad = next(int(w) for w in sizes if w < 1)
            raise ValueError(f"hidden_layer_sizes must hold widths of at least 1, got {bad} in {tuple(sizes)!r}")
        cfg = {k: getattr(self, k) for k in _TRAIN_KEYS}
        for k in ("batch_size", "epochs", "steps", "patience", "ensemble"):
            v = cfg[k]
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{k} must be a non-negative int, got {v!r}")
            cfg[k] = int(v)
        for k in ("dropout", "label_smoothing", "momentum", "weight_decay", "val_split", "min_delta", "clip_grad_norm"):
            v = cfg[k]
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"{k} must be a finite number, got {v!r}")
            cfg[k] = float(v)
        for k in ("activation", "init", "optimizer", "schedule", "monitor", "scaling", "impute", "on_nan"):
            if not isinstance(cfg[k], str):
                raise ValueError(f"{k} must be a string, got {cfg[k]!r}")
        lr = self.lr
        if lr is not None and (
            not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0
        ):
            raise ValueError(f"lr must be a positive number, or None for the optimizer's default, got {lr!r}")
        cfg["hidden"] = hidden
        cfg["lr"] = 0.0 if lr is None else float(lr)
        cfg["seed"] = self._seed()
        cfg["task"] = self._task
        for k in ("batch_norm", "bn_after"):
            # bool() had made the string "no" (or "False") turn BN on.
            v = cfg[k]
            if not (isinstance(v, (bool, np.bool_)) or (isinstance(v, numbers.Integral) and v in (0, 1))):
                raise ValueError(f"{k} must be True or False, got {v!r}")
            cfg[k] = bool(v)
        return json.dumps(cfg)

    def _bn_params(self):
        """``bn_momentum`` and ``bn_eps`` as floats, named when they are not
        numbers (``float('x')`` had said only "could not convert")."""
        out = []
        for k in ("bn_momentum", "bn_eps"):
            v = getattr(self, k)
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"{k} must be a finite number, got {v!r}")
            out.append(float(v))
        return out

    def _check_watch(self, eval_set):
        """A patience or monitor of the user's with no validation rows to
        watch (``val_split=0`` and no ``eval_set``) is refused, as ``bpnet
        train`` refuses it: it was ignored, every epoch trained. The
        defaults (patience 20, val_loss) are off without validation."""
        if eval_set is not None or self.val_split != 0:
            return
        if not isinstance(self.patience, numbers.Integral) or not isinstance(self.monitor, str):
            return  # refused by _config, naming the parameter
        asked = [
            f"patience={self.patience}" if self.patience not in (0, 20) else None,
            f"monitor={self.monitor!r}" if self.monitor != "val_loss" else None,
        ]
        given = [a for a in asked if a]
        if given:
            raise ValueError(
                f"{given[0]}: early stopping watches validation rows, and val_split=0 with no eval_set gives "
                "none; set val_split (such as 0.1), pass eval_set, or leave it at its default"
            )

    def _seed(self):
        rs = self.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            if not 0 <= rs < 2**64:
                raise ValueError(f"random_state must be in 0..2**64, got {rs}")
            return int(rs)
        return int(check_random_state(rs).randint(0, 2**31 - 1))

    def _start_fit(self):
        """The training configuration (parameters checked before the data,
        so that a refused refit leaves the fitted model and its feature
        count alone), the threads set, and the old model dropped: a fit
        that fails afterwards leaves the estimator unfitted, not half old."""
        cfg = self._config()
        self._set_threads()
        # Every fitted attribute goes (scikit-learn's `name_`, and the
        # private ones): only `_native` and `_fitted_impute` went, so a
        # refit that failed kept `classes_` and `history_` of the old model
        # and `check_is_fitted` (and Pipeline) took it for fitted while
        # predict refused. eval_set is read with this fit's imputation.
        fitted = [k for k in vars(self) if (k.endswith("_") and not k.startswith("__")) or k in _PRIVATE_FITTED]
        for k in fitted:
            del self.__dict__[k]
        return cfg

    def __sklearn_is_fitted__(self):
        """Fitted when a network is held (what predict needs)."""
        return "_native" in vars(self)

    def _set_threads(self):
        n = self.threads
        if n is None:
            # bpnet.set_threads(n) chose the count for the process (set
            # again: another estimator's threads=k may have changed it).
            n = _THREADS_SET_BY_USER[0] or _bpnet.available_cores()
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
            raise ValueError(f"threads must be a positive int or None, got {n!r}")
        _bpnet.set_threads(min(int(n), 1 << 16))

    # ----- input ---------------------------------------------------------

    def _check_X(self, X, reset, y="no_validation", multi_output=False):
        # New rows of a fitted model are read as it was fitted: a later
        # set_params(impute=...) changes the next fit, not this model.
        impute = self.impute if reset else getattr(self, "_fitted_impute", self.impute)
        allow_nan = impute not in ("none", "", None)
        kw = dict(
            dtype=(np.float64, np.float32),
            order=None,
            ensure_all_finite="allow-nan" if allow_nan else True,
            accept_sparse=False,
        )
        if isinstance(y, str) and y == "no_validation":
            X = validate_data(self, X, reset=reset, **kw)
        else:
            X, y = validate_data(self, X, y, reset=reset, multi_output=multi_output, y_numeric=multi_output, **kw)
        if not (X.flags.c_contiguous or X.flags.f_contiguous):
            X = np.ascontiguousarray(X)
        if X.shape[0] < 1:
            raise ValueError("X has 0 samples")
        return X, y

    def _names(self):
        names = getattr(self, "feature_names_in_", None)
        return None if names is None else [str(n) for n in names]

    def _free_targets(self, target):
        """Target names beside the feature names: the model file names its
        columns, and `bpnet eval` on a table would read a feature of the
        same name as the target (a y named 'price' beside X's 'price', as
        in `df.price.shift(-1)`, was scored on X's column). A name that is
        also a feature's gets underscores appended ('price_')."""
        features = set(self._names() or [])
        free = []
        for t in target:
            while t in features or t in free:
                t += "_"
            free.append(t)
        return free

    # ----- results -------------------------------------------------------

    def _adopt(self, native):
        self._native = native
        self.history_ = json.loads(native.history_json)
        self.loss_curve_ = [r["train_loss"] for r in self.history_]
        vals = [r["val_metric"] for r in self.history_]
        self.validation_scores_ = vals if any(v is not None for v in vals) else None
        self.best_epoch_ = native.best_epoch
        self.n_networks_ = native.members
        self.n_iter_ = len(self.history_)
        self.notes_ = list(native.notes)
        try:
            self._fitted_impute = json.loads(native.config_json).get("impute", "none")
        except (ValueError, RuntimeError, AttributeError):
            self._fitted_impute = "none"
        return self

    def _native_model(self):
        check_is_fitted(self, "_native")
        return self._native

    def _fitted_state(self, *names):
        """The fitted attributes ``_native`` and ``names``, read at one
        moment (one copy of the instance's dict): a ``fit`` started by
        another thread drops them one by one and sets the new ones one by
        one, so reading them apart gave an AttributeError, or could pair
        the new network with the old classes. A copy holding all of them
        holds one model's; else NotFittedError."""
        state = dict(vars(self))
        if any(n not in state for n in ("_native", *names)):
            check_is_fitted(self, "_native")  # raises NotFittedError
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet (a fit is running)")
        return state

    def _check_new_X(self, X):
        """``_check_X`` of new rows for a fitted model: a fit started by
        another thread meanwhile (which drops ``n_features_in_`` between
        scikit-learn's check for it and its use) is NotFittedError."""
        try:
            return self._check_X(X, reset=False)[0]
        except AttributeError:
            self._fitted_state()
            raise

    def save(self, path, overwrite=False):
        """Write the model file ``path`` (.safetensors), the format of
        ``bpnet train``: ``bpnet eval``, ``predict``, ``export`` and
        ``inspect`` read it, and ``bpnet.load`` reads it back. A file there
        that is not a bpnet model (a CSV, say) is replaced only with
        ``overwrite=True`` (else FileExistsError)."""
        self._native_model().save(_path(path), overwrite)
        return self

    def to_onnx(self, path, probabilities=False, fold_bn=False, opset=None, input_dtype="float32", overwrite=False):
        """Write the model, its preprocessing included, as ONNX (as ``bpnet
        export``): input ``features`` (raw column values, [batch,
        n_features], of ``input_dtype``: float32, or float64 to run the
        preprocessing in float64 for values a float32 holds too coarsely,
        such as a column near 1e6 that varies by 0.01); output ``logits``
        (or ``probabilities``) for classification, ``predictions`` in the
        target's units for regression, float32 (regression with float64
        input: float64, mapped back in float64). The classes are in the
        order of the ``class_names`` metadata, as the network outputs them,
        which is ``classes_``'s order but for labels that are texts of
        numbers ('9' before '10' there, after it in ``classes_``). A file
        there that is not an ONNX model is replaced only with
        ``overwrite=True``. With float32 input, columns or targets that a
        float32 holds coarsely against the model's spread (values far from
        zero) are named in a ``UserWarning``, as ``bpnet export`` notes
        them."""
        dtype = np.dtype(input_dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"input_dtype must be float32 or float64, not {dtype}")
        native = self._native_model()
        notes = native.to_onnx(_path(path), probabilities, fold_bn, opset, dtype == np.float64, overwrite)
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=2)
        return self

    @property
    def summary_(self):
        """The network's layers, one a line."""
        return self._native_model().summary

    def coefs(self):
        """Trainable tensors by name (``layers.0.weight``, ...), float32; the
        further networks of an ensemble as ``ensemble.1.layers.0.weight``..."""
        return dict(self._native_model().tensors())

    # ----- pickling: the model travels as its model-file bytes ------------

    def __getstate__(self):
        state = self.__dict__.copy()
        native = state.pop("_native", None)
        if native is not None:
            state["_native_bytes"] = native.to_bytes()
        return state

    def __setstate__(self, state):
        data = state.pop("_native_bytes", None)
        self.__dict__.update(state)
        if data is not None:
            self._native = _bpnet.NativeModel.from_bytes(data)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.impute not in ("none", "", None)
        tags.non_deterministic = self.random_state is None or not isinstance(self.random_state, numbers.Integral)
        return tags


def _order(state):
    """The output of the network behind each column of ``classes_``, from
    an estimator's attributes ``state`` (identity for an estimator pickled
    before the permutation existed)."""
    order = state.get("_class_order")
    return np.arange(len(state["classes_"])) if order is None else order


def _eval_pair(eval_set):
    """``eval_set`` as ``(X_val, y_val)``; another shape is named (it said
    "too many values to unpack")."""
    if not (isinstance(eval_set, (tuple, list)) and len(eval_set) == 2):
        what = f"a {type(eval_set).__name__}" + (f" of {len(eval_set)} items" if isinstance(eval_set, (tuple, list)) else "")
        raise ValueError(f"eval_set must be a pair (X_val, y_val), got {what}")
    return eval_set


def _target_names(y):
    """Column names of a pandas y (a named Series or a DataFrame), else None."""
    name = getattr(y, "name", None)
    if isinstance(name, str):
        return [name]
    cols = getattr(y, "columns", None)
    if cols is not None and all(isinstance(c, str) for c in cols):
        return [str(c) for c in cols]
    return None


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity)", re.IGNORECASE)


_MISSING = {"", "na", "n/a", "nan", "-nan", "+nan", "null", "?"}
_LEADING_ZERO = re.compile(r"[+-]?0\d")


def _check_label_texts(names):
    """The engine reads class labels from their texts, as a CSV of them:
    labels that are all numbers are matched by value, so two labels whose
    texts are the same number ('1' and '1.0', or integers past 2**53 that
    round to one float) would become one class, and a label that reads as
    a missing value ('NA', '') as none. Refused, naming them."""
    if len(set(names)) != len(names):
        raise ValueError("two class labels have the same text; use distinct labels")
    for n in names:
        if n.strip().lower() in _MISSING:
            raise ValueError(
                f"class label {n!r} reads as a missing value, as in a CSV (missing: '', NA, N/A, NaN, null, ?): "
                "use another label"
            )
    for n in names:
        if n != n.strip() and _NUMBER.fullmatch(n.strip()):
            # The engine reads ' 1' as the number 1 and then missed the class.
            raise ValueError(
                f"class label {n!r} is a number with spaces around it, which reads as {n.strip()!r} in a CSV: "
                "strip the spaces, or use labels that are not numbers"
            )
    if not all(_NUMBER.fullmatch(n.strip()) for n in names):
        return
    seen = {}
    for n in names:
        v = float(n)
        if v in seen:
            raise ValueError(
                f"class labels {seen[v]!r} and {n!r} are the same number as text (labels that are all "
                "numbers are matched by value, as in a CSV): use labels that differ as numbers, or strings "
                "that are not all numbers"
            )
        seen[v] = n


def _check_no_missing_label(y, what):
    """A label that is None is refused naming its row (numpy's sort of
    the labels had failed with "'<' not supported between instances of
    'NoneType' and 'str'")."""
    a = np.asarray(y)
    if a.dtype == object:
        missing = [i for i, v in enumerate(a.ravel()) if v is None]
        if missing:
            raise ValueError(
                f"{what} holds a missing class label (None) at row {missing[0]} ({len(missing)} in all): "
                "give every row a label, or drop those rows"
            )


def _labels_as_text(y):
    """Class labels as the texts a CSV of them holds, and the classes."""
    classes, inverse = np.unique(y, return_inverse=True)
    names = np.array([str(c) for c in classes], dtype=object)
    _check_label_texts(list(names))
    return classes, names, names[inverse].tolist()


def _as_classes(y, classes):
    """The labels `y` as the values of `classes` (so their texts are the
    classes' own): matched by value, as numpy compares them (0 is 0.0; the
    text '0' is not the number 0); a label not among them is an error."""
    classes = np.unique(classes)
    seen = np.unique(y)
    unknown = seen[~np.isin(seen, classes)]
    if len(unknown):
        raise ValueError(f"y holds labels not in classes: {sorted(unknown.tolist(), key=str)}")
    return classes[np.searchsorted(classes, y)]


# The count given to `bpnet.set_threads` (None until it is called), which
# `threads=None` uses.
_THREADS_SET_BY_USER = [None]


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = (
        "A backprop network with batch normalization for classification: "
        "softmax cross-entropy over the classes, trained as ``bpnet train --task classify``.\n"
        + _COMMON_DOC
        + """    classes_ : ndarray
        The class labels, sorted as ``np.unique(y)`` sorts them; the columns
        of ``predict_proba`` follow this order.
"""
    )

    _task = "classify"

    def fit(self, X, y, eval_set=None):
        """Train on X [n_samples, n_features] and class labels y.

        eval_set : (X_val, y_val), optional
            Validation rows instead of the ``val_split`` hold-out (for early
            stopping and ``history_``).
        """
        given = _target_names(y)
        target = (given or ["target"])[:1]
        self._check_watch(eval_set)
        cfg = self._start_fit()
        X, y = self._check_X(X, reset=True, y=y)
        target = self._free_targets(target)
        _check_no_missing_label(y, "y")
        check_classification_targets(y)
        y = column_or_1d(y, warn=True)
        if X.shape[0] < 2:
            raise ValueError(f"bpnet needs at least 2 samples, got n_samples = {X.shape[0]}")
        classes, names, cells = _labels_as_text(y)
        lookup = dict(zip(names, classes))
        ex, ey = self._eval(eval_set, lookup)
        native = _bpnet.NativeModel.fit(
            cfg, X, cells, self._names(), target, ex, ey, *self._bn_params()
        )
        self._set_classes(np.array([lookup[n] for n in native.class_names], dtype=classes.dtype))
        native.label_kind = _label_kind(classes)
        return self._adopt(native)

    def _set_classes(self, outputs):
        """``classes_`` from the labels of the network's outputs, in output
        order: sorted as ``np.unique`` sorts y (scikit-learn's scorers read
        ``predict_proba``'s columns in that order; the engine orders labels
        that are all numbers by value, so '9' came before '10'), with the
        permutation from outputs to columns."""
        order = np.argsort(outputs, kind="stable")
        self.classes_ = outputs[order]
        self._class_order = order

    def _eval(self, eval_set, lookup):
        if eval_set is None:
            return None, None
        ex, ey = _eval_pair(eval_set)
        ex, _ = self._check_X(ex, reset=False)
        _check_no_missing_label(ey, "eval_set's y")
        ey = column_or_1d(np.asarray(ey))
        return ex, [str(v) for v in ey]

    def partial_fit(self, X, y, classes=None):
        """One epoch over X, y, continuing training (optimizer state kept).

        The first call fits the preprocessing on its rows and needs
        ``classes`` (every label that will ever be seen); the training
        parameters are those of that call (``set_params`` afterwards does
        not change the network being trained: ``fit`` starts anew)."""
        first = not hasattr(self, "_native")
        X, y = self._check_X(X, reset=first, y=y)
        _check_no_missing_label(y, "y")
        check_classification_targets(y)
        y = column_or_1d(y, warn=True)
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            classes = np.unique(np.asarray(classes))
            names = [str(c) for c in classes]
            _check_label_texts(names)
            lookup = dict(zip(names, classes))
            y = _as_classes(y, classes)
            self._set_threads()
            native = _bpnet.NativeModel.start_partial(
                self._config(), X, [str(v) for v in y], self._names(), self._free_targets(["target"]), names,
                *self._bn_params(),
            )
            self._set_classes(np.array([lookup[n] for n in native.class_names], dtype=classes.dtype))
            native.label_kind = _label_kind(classes)
        else:
            if classes is not None and not np.array_equal(np.unique(classes), np.sort(self.classes_)):
                raise ValueError("classes differ from those of the first partial_fit call")
            native = self._native
            native.partial_fit(X, [str(v) for v in _as_classes(y, self.classes_)])
        return self._adopt(native)

    def predict(self, X):
        """Class labels of X (the highest output, as ``bpnet predict``)."""
        state = self._fitted_state("classes_")
        X = self._check_new_X(X)
        outputs = np.asarray(state["_native"].predict_classes(X), dtype=np.intp)
        return state["classes_"][np.argsort(_order(state))[outputs]]

    def predict_proba(self, X):
        """Class probabilities [n_samples, n_classes] (softmax), float64,
        columns in the order of ``classes_``; each row sums to 1 in float64
        (the float32 softmax is renormalized after the cast)."""
        state = self._fitted_state("classes_")
        X = self._check_new_X(X)
        p = state["_native"].predict_proba(X).astype(np.float64)[:, _order(state)]
        if p.shape[1] > 1:
            p /= p.sum(axis=1, keepdims=True)
        return p

    def predict_log_proba(self, X):
        """Logarithm of ``predict_proba``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = (
        "A backprop network with batch normalization for regression: mean "
        "squared error on standardized targets (one or several), trained as "
        "``bpnet train --task regress``; predictions are in the targets' units.\n" + _COMMON_DOC
    )

    _task = "regress"

    def _targets(self, y):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 1:
            return np.ascontiguousarray(y.reshape(-1, 1)), 1
        return np.ascontiguousarray(y), 2

    def fit(self, X, y, eval_set=None):
        """Train on X [n_samples, n_features] and targets y [n_samples] or
        [n_samples, n_targets].

        eval_set : (X_val, y_val), optional
            Validation rows instead of the ``val_split`` hold-out."""
        names = _target_names(y)
        self._check_watch(eval_set)
        cfg = self._start_fit()
        X, y = self._check_X(X, reset=True, y=y, multi_output=True)
        if X.shape[0] < 2:
            raise ValueError(f"bpnet needs at least 2 samples, got n_samples = {X.shape[0]}")
        y2, self._y_ndim = self._targets(y)
        given = names is not None and len(names) == y2.shape[1]
        if not given:
            names = ["target"] if y2.shape[1] == 1 else [f"target{j}" for j in range(y2.shape[1])]
        names = self._free_targets(names)
        ex = ey = None
        if eval_set is not None:
            ex, ey = _eval_pair(eval_set)
            ex, _ = self._check_X(ex, reset=False)
            ey, _ = self._targets(ey)
        native = _bpnet.NativeModel.fit(
            cfg, X, y2, self._names(), names, ex, ey, *self._bn_params()
        )
        native.target_ndim = self._y_ndim
        return self._adopt(native)

    def partial_fit(self, X, y):
        """One epoch over X, y, continuing training (optimizer state kept);
        the first call fits the preprocessing on its rows."""
        first = not hasattr(self, "_native")
        X, y = self._check_X(X, reset=first, y=y, multi_output=True)
        y2, ndim = self._targets(y)
        if first:
            self._y_ndim = ndim
            names = ["target"] if y2.shape[1] == 1 else [f"target{j}" for j in range(y2.shape[1])]
            names = self._free_targets(names)
            self._set_threads()
            native = _bpnet.NativeModel.start_partial(
                self._config(), X, y2, self._names(), names, None, *self._bn_params()
            )
            native.target_ndim = ndim
        else:
            native = self._native
            native.partial_fit(X, y2)
        return self._adopt(native)

    def predict(self, X):
        """Predictions in the targets' units: [n_samples] for a 1-D y,
        else [n_samples, n_targets] (float64)."""
        state = self._fitted_state()
        X = self._check_new_X(X)
        out = state["_native"].predict_values(X)
        return out.ravel() if state.get("_y_ndim", 1) == 1 and out.shape[1] == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.regressor_tags.poor_score = False
        return tags


def _path(path):
    """A file path given as str, bytes or os.PathLike, as str."""
    return os.fsdecode(os.fspath(path))


def load(path):
    """Read a model file written by ``bpnet train`` or by ``save`` as a
    fitted MLPClassifier or MLPRegressor (its parameters from the file's
    training configuration); an ensemble file (``bpnet train``'s default on
    tables of at most 50,000 rows) keeps all its networks and averages
    them as ``bpnet predict`` does."""
    native = _bpnet.NativeModel.load(_path(path))
    return _from_native(native)


def _from_native(native):
    cfg = json.loads(native.config_json)
    est = MLPRegressor() if native.task == "regress" else MLPClassifier()
    params = {k: cfg[k] for k in _TRAIN_KEYS if k in cfg}
    hidden = cfg.get("hidden", "")
    params["hidden_layer_sizes"] = tuple(int(w) for w in hidden.replace("-", ",").split(",") if w.strip())
    params["lr"] = cfg["lr"] if cfg.get("lr") else None
    params["random_state"] = cfg.get("seed", 0)
    momentum, eps = native.bn_settings
    if momentum is not None:
        params["bn_momentum"] = momentum
    params["bn_eps"] = eps
    est.set_params(**params)
    names = native.feature_names
    est.n_features_in_ = native.n_features
    if names is not None:
        est.feature_names_in_ = np.array(names, dtype=object)
    if native.task == "classify":
        est._set_classes(_class_array(native.class_names, native.label_kind))
    else:
        recorded = native.target_ndim
        est._y_ndim = recorded if recorded is not None else (1 if len(native.target_names) == 1 else 2)
    return est._adopt(native)


def _label_kind(classes):
    """The Python type of the class labels, recorded in the model file so
    that ``load`` gives the same labels back."""
    kind = classes.dtype.kind
    if kind == "b":
        return "bool"
    if kind in "iu":
        return "int"
    if kind == "f":
        return "float"
    if kind in "US" or all(isinstance(c, str) for c in classes):
        return "str"
    if kind == "M":
        # datetime64[unit]: its texts ('2020-01-01') read back as dates
        # (load had given strings).
        return str(classes.dtype)
    return None


def _class_array(names, kind=None):
    """The class labels from their texts: as the type recorded by a model
    trained from Python; otherwise (a ``bpnet train`` model) numbers where
    every text is one and they are distinct ('+1' and '-1' are 1 and -1),
    but texts where one has a leading zero ('007' stays a string), since
    its number would not be the label a CSV of it holds."""
    if kind == "bool":
        return np.array([n == "True" for n in names])
    if kind is not None and kind.startswith("datetime64"):
        try:
            return np.array(names, dtype=kind)
        except (TypeError, ValueError):
            pass  # a unit numpy does not know: the texts, as below
    if kind == "str" or any(_LEADING_ZERO.match(n.strip()) for n in names):
        return np.array(names, dtype=object)
    for parse in (int, float):
        try:
            values = [parse(n) for n in names]
        except ValueError:
            continue
        if kind is None and (len(set(values)) != len(values) or any(v != v for v in values)):
            break
        if parse is int and not all(-(2**63) <= v < 2**63 for v in values):
            return np.array(values, dtype=object)
        return np.array(values)
    return np.array(names, dtype=object)
