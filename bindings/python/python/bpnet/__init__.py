"""bpnet: backpropagation networks with batch normalization, on a Rust engine.

- ``MLPClassifier`` and ``MLPRegressor``: scikit-learn estimators whose every
  parameter is a ``bpnet train`` option with its default; the same data,
  parameters and seed give the same weights, bit for bit, as ``bpnet train``.
- ``load(path)``: a model file written by ``bpnet train`` or ``est.save``.
- ``experiment``: the batch-normalization studies of ``bpnet experiment``.
- ``set_threads(n)`` / ``threads()``: the process-wide thread count.

Threads and ``fork``: bpnet's worker threads do not survive ``os.fork()``;
the package re-creates them in the child (``os.register_at_fork``), which is
safe unless another thread was inside bpnet at the moment of the fork. With
``multiprocessing``, prefer the ``spawn`` or ``forkserver`` start methods.
"""

import numbers as _numbers
import os as _os

from . import _bpnet
from ._estimators import MLPClassifier, MLPRegressor, load
from . import experiment

__version__ = _bpnet.version()


def set_threads(n):
    """Let bpnet use ``n`` threads (the caller included); returns the count
    in effect. Results do not depend on it. Estimators with ``threads=None``
    keep this count (until this call they take every core)."""
    from . import _estimators

    if not isinstance(n, _numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"threads must be a positive int, got {n!r}")
    _estimators._THREADS_SET_BY_USER[0] = min(int(n), 1 << 16)
    return _bpnet.set_threads(min(int(n), 1 << 16))


def threads():
    """The thread count in effect."""
    return _bpnet.threads()


def _after_fork_in_child():
    n = _bpnet.threads()
    if n > 1:
        _bpnet.restart_after_fork(n)


if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["MLPClassifier", "MLPRegressor", "load", "experiment", "set_threads", "threads", "__version__"]
