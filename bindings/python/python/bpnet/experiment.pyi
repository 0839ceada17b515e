from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

@dataclass
class StudyResult:
    study: str
    title: str
    summary: dict[str, Any]
    seconds: float
    out: Path
    @property
    def report(self) -> Path: ...

def bn_mnist(
    quick: bool = True,
    out: str | PathLike[str] = "bn-experiments",
    *,
    steps: int | None = None,
    lr: float | None = None,
    init_std: float | None = None,
    batch_size: int | None = None,
    eval_every: int | None = None,
    seed: int | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    mnist: str | PathLike[str] | None = None,
    quiet: bool = True,
    overwrite: bool = False,
) -> StudyResult: ...
def lr(quick: bool = True, out: str | PathLike[str] = "bn-experiments", **settings: Any) -> StudyResult: ...
def depth(quick: bool = True, out: str | PathLike[str] = "bn-experiments", **settings: Any) -> StudyResult: ...
def population(quick: bool = True, out: str | PathLike[str] = "bn-experiments", **settings: Any) -> StudyResult: ...
def all_studies(quick: bool = True, out: str | PathLike[str] = "bn-experiments", **settings: Any) -> list[StudyResult]: ...
