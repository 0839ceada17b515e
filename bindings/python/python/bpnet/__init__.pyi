"""Type stubs of the bpnet package."""

from os import PathLike
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from . import experiment as experiment

__version__: str

_Path = str | bytes | PathLike[str] | PathLike[bytes]

class _BaseMLP(BaseEstimator):
    hidden_layer_sizes: tuple[int, ...]
    activation: str
    batch_norm: bool
    bn_after: bool
    bn_momentum: float
    bn_eps: float
    dropout: float
    label_smoothing: float
    init: str
    optimizer: str
    lr: float | None
    momentum: float
    weight_decay: float
    batch_size: int
    epochs: int
    steps: int
    schedule: str
    val_split: float
    patience: int
    min_delta: float
    monitor: str
    scaling: str
    impute: str
    clip_grad_norm: float
    on_nan: str
    ensemble: int
    random_state: int | np.random.RandomState | None
    threads: int | None
    n_features_in_: int
    feature_names_in_: npt.NDArray[np.object_]
    history_: list[dict[str, Any]]
    loss_curve_: list[float]
    validation_scores_: list[float] | None
    best_epoch_: int
    n_networks_: int
    n_iter_: int
    notes_: list[str]
    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100, 100),
        activation: str = "relu",
        batch_norm: bool = True,
        bn_after: bool = False,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
        init: str = "he_normal",
        optimizer: str = "adam",
        lr: float | None = None,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        batch_size: int = 128,
        epochs: int = 100,
        steps: int = 0,
        schedule: str = "constant",
        val_split: float = 0.1,
        patience: int = 20,
        min_delta: float = 0.0,
        monitor: str = "val_loss",
        scaling: str = "auto",
        impute: str = "none",
        clip_grad_norm: float = 0.0,
        on_nan: str = "stop",
        ensemble: int = 0,
        random_state: int | np.random.RandomState | None = 0,
        threads: int | None = None,
    ) -> None: ...
    def save(self, path: _Path, overwrite: bool = False) -> _BaseMLP: ...
    def to_onnx(
        self,
        path: _Path,
        probabilities: bool = False,
        fold_bn: bool = False,
        opset: int | None = None,
        input_dtype: str | type = "float32",
        overwrite: bool = False,
    ) -> _BaseMLP: ...
    @property
    def summary_(self) -> str: ...
    def coefs(self) -> dict[str, npt.NDArray[np.float32]]: ...

class MLPClassifier(ClassifierMixin, _BaseMLP):
    classes_: npt.NDArray[Any]
    def fit(self, X: Any, y: Any, eval_set: tuple[Any, Any] | None = None) -> MLPClassifier: ...
    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier: ...
    def predict(self, X: Any) -> npt.NDArray[Any]: ...
    def predict_proba(self, X: Any) -> npt.NDArray[np.float64]: ...
    def predict_log_proba(self, X: Any) -> npt.NDArray[np.float64]: ...

class MLPRegressor(RegressorMixin, _BaseMLP):
    def fit(self, X: Any, y: Any, eval_set: tuple[Any, Any] | None = None) -> MLPRegressor: ...
    def partial_fit(self, X: Any, y: Any) -> MLPRegressor: ...
    def predict(self, X: Any) -> npt.NDArray[np.float64]: ...

def load(path: _Path) -> MLPClassifier | MLPRegressor: ...
def set_threads(n: int) -> int: ...
def threads() -> int: ...
