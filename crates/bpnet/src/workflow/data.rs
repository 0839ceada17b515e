//! Loading the data a command works on: the bundled MNIST, an IDX folder or a
//! CSV file; splitting it; fitting the preprocessing on the training rows; and
//! the `Pipeline` stored in the model file so eval and predict apply the same
//! preprocessing to new files (or none, for an imported model).

use super::config::TrainConfig;
use super::features::{feature_dataset, feature_matrix, missing_target};
use crate::data::csv::{ColumnRef, CsvOptions};
use crate::data::preprocess::{Impute, PreprocessSpec, Preprocessor, Scaling, Targets as TableTargets, Task};
use crate::data::read_data;
use crate::data::split::{for_option, split};
use crate::data::table::{AsTable, Table};
use crate::data::{Dataset, bundled_mnist_dir, load_mnist, load_mnist_test, load_mnist_test_images, load_mnist_train};
use crate::{Error, Matrix, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// How raw input becomes features, as stored in a model file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pipeline {
    /// MNIST-format images: pixels / 255, classes `0`..`9`.
    Images {
        /// Pixels per image.
        features: usize,
    },
    /// A CSV table with its fitted preprocessing.
    Table {
        /// Field delimiter.
        delimiter: char,
        /// Whether the training file had a header.
        header: bool,
        /// The fitted preprocessing.
        preprocessor: Preprocessor,
    },
    /// No preprocessing (a model file without it, as `bpnet import`
    /// writes): the input is the feature matrix as it is, one numeric
    /// column per network input (see [`super::feature_matrix`]).
    Features {
        /// Network inputs: the columns of the data.
        inputs: usize,
        /// Network outputs.
        outputs: usize,
    },
}

/// Data ready for training.
pub struct Prepared {
    /// Training rows.
    pub train: Dataset,
    /// Validation rows (from `--val-split`).
    pub val: Option<Dataset>,
    /// Test rows (`--test` or `--test-split`, or MNIST's test set).
    pub test: Option<Dataset>,
    /// The preprocessing, as stored in the model file (turned into JSON only
    /// when a file is written: for a wide table that JSON is large).
    pub pipeline: Pipeline,
    /// Messages for the user (task detection, dropped batches...).
    pub notes: Vec<String>,
}

impl Prepared {
    pub(super) fn new(
        train: Dataset,
        val: Option<Dataset>,
        test: Option<Dataset>,
        pipeline: Pipeline,
        notes: Vec<String>,
    ) -> Result<Self> {
        Ok(Prepared {
            train,
            val,
            test,
            pipeline,
            notes,
        })
    }
}

impl Pipeline {
    /// Class names for classification models.
    pub fn class_names(&self) -> Option<Vec<String>> {
        match self {
            Pipeline::Images { .. } => Some((0..10).map(|d| d.to_string()).collect()),
            Pipeline::Table { preprocessor, .. } => preprocessor.class_names().map(|c| c.to_vec()),
            Pipeline::Features { .. } => None,
        }
    }

    /// Reads the pipeline back from a model file's metadata.
    pub fn from_metadata(meta: &serde_json::Map<String, Value>, path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::Format {
            path: path.to_path_buf(),
            reason,
        };
        let v = meta
            .get("preprocessing")
            .ok_or_else(|| bad("model file has no 'preprocessing' metadata".into()))?;
        let pipeline = Pipeline::deserialize(v).map_err(|e| bad(format!("invalid 'preprocessing' metadata: {e}")))?;
        if let Pipeline::Table { preprocessor, .. } = &pipeline {
            preprocessor
                .check_consistent()
                .map_err(|e| bad(format!("inconsistent 'preprocessing' metadata: {e}")))?;
        }
        Ok(pipeline)
    }

    /// Whether `eval --target` columns fit the model `model`: needed for
    /// a model without preprocessing ([`Pipeline::Features`], see
    /// [`super::feature_dataset`]), refused for any other, whose
    /// preprocessing names its targets.
    pub fn check_targets(&self, targets: &[ColumnRef], model: &Path) -> Result<()> {
        match (self, targets.is_empty()) {
            (Pipeline::Features { inputs, outputs }, true) => Err(missing_target(model, *inputs, *outputs)),
            (Pipeline::Features { .. }, false) | (_, true) => Ok(()),
            (_, false) => Err(Error::config(
                "--target",
                format!(
                    "only for a model without preprocessing (from `bpnet import`): the preprocessing of {} names its targets",
                    model.display()
                ),
            )),
        }
    }

    /// Whether `data` (a `--data` argument) is the kind of data this
    /// pipeline reads: a folder of MNIST-format images (or `mnist`) for an
    /// image model, a file for a table model. `model` names the model file.
    pub fn check_data(&self, data: &str, model: &Path) -> Result<()> {
        let image = is_image_source(data);
        let problem = match self {
            // A path that does not exist is the reader's to report.
            Pipeline::Images { .. } if !image && Path::new(data).exists() => format!(
                "{} was trained on MNIST-format images: give their folder (or mnist), not a table",
                model.display()
            ),
            Pipeline::Table { .. } if image => format!(
                "{} was trained on a table: give a CSV, Parquet or Arrow file, not an image folder",
                model.display()
            ),
            Pipeline::Features { inputs, .. } if image => format!(
                "{} has no preprocessing (from `bpnet import`): give a CSV, Parquet or Arrow file of its {inputs} input features, not an image folder",
                model.display()
            ),
            _ => return Ok(()),
        };
        Err(Error::Format {
            path: data_path(data),
            reason: problem,
        })
    }

    /// [`Pipeline::from_metadata`] of a loaded model file, checked against
    /// its network: as many inputs as the pipeline makes features, as many
    /// outputs as classes or regression targets. A file without
    /// preprocessing metadata (from `bpnet import`) takes the feature
    /// matrix as it is: [`Pipeline::Features`].
    pub fn of_model(file: &crate::io::ModelFile, path: &Path) -> Result<Self> {
        let dims = &file.spec.dims;
        let (first, last) = (dims.first().copied(), dims.last().copied());
        if !file.metadata.contains_key("preprocessing") {
            return Ok(Pipeline::Features {
                inputs: first.unwrap_or(0),
                outputs: last.unwrap_or(0),
            });
        }
        let pipeline = Self::from_metadata(&file.metadata, path)?;
        let (inputs, outputs) = match &pipeline {
            Pipeline::Images { features } => (*features, 10),
            Pipeline::Table { preprocessor, .. } => (preprocessor.n_features(), preprocessor.n_outputs()),
            Pipeline::Features { inputs, outputs } => (*inputs, *outputs),
        };
        if first != Some(inputs) || last != Some(outputs) {
            return Err(Error::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "inconsistent model file: its preprocessing makes {inputs} inputs and {outputs} outputs, its network takes {} and gives {}",
                    first.unwrap_or(0),
                    last.unwrap_or(0)
                ),
            });
        }
        pipeline.check_combine(file, path)?;
        Ok(pipeline)
    }

    /// Whether an ensemble's averaging fits the task: probabilities for a
    /// classifier, values for regression (a regression ensemble averaged
    /// as softmax probabilities predicted the targets' mean everywhere).
    fn check_combine(&self, file: &crate::io::ModelFile, path: &Path) -> Result<()> {
        let Some(combine) = file
            .metadata
            .get(crate::io::ENSEMBLE_KEY)
            .and_then(|e| e.get("combine"))
            .and_then(|c| serde_json::from_value::<crate::Combine>(c.clone()).ok())
        else {
            return Ok(());
        };
        let classify = match self {
            Pipeline::Images { .. } => true,
            Pipeline::Table { preprocessor, .. } => preprocessor.class_names().is_some(),
            Pipeline::Features { .. } => return Ok(()),
        };
        match (classify, combine) {
            (true, crate::Combine::Mean) | (false, crate::Combine::Softmax | crate::Combine::Sigmoid) => {
                Err(Error::Format {
                    path: path.to_path_buf(),
                    reason: format!(
                        "inconsistent model file: a {} whose ensemble averages {}",
                        if classify { "classifier" } else { "regression model" },
                        if classify { "values" } else { "probabilities" }
                    ),
                })
            }
            _ => {
                // Sigmoid averages one output, softmax two or more (a
                // 3-class ensemble marked sigmoid exported probabilities
                // summing to 1.2).
                let outputs = file.model.out_features().unwrap_or(0);
                match (combine, outputs) {
                    (crate::Combine::Sigmoid, n) if n != 1 => Err(Error::Format {
                        path: path.to_path_buf(),
                        reason: format!("inconsistent model file: an ensemble averaging sigmoids of {n} outputs"),
                    }),
                    (crate::Combine::Softmax, n) if n < 2 => Err(Error::Format {
                        path: path.to_path_buf(),
                        reason: format!("inconsistent model file: an ensemble averaging a softmax of {n} output"),
                    }),
                    _ => Ok(()),
                }
            }
        }
    }
}

pub(super) fn is_image_source(data: &str) -> bool {
    data == "mnist" || Path::new(data).is_dir()
}

/// The file or folder a `--data`/`--test` argument reads (`mnist` is the bundled folder).
pub fn data_path(data: &str) -> PathBuf {
    image_dir(data)
}

/// Hex SHA-256 of the training rows' source that `data` names, so that a
/// checkpoint can tell whether it resumes on the same bytes: a file's bytes,
/// or for an MNIST-format folder (or `mnist`) the digests of its two
/// `train-*` files (the files training reads; other files in the folder
/// do not count).
pub fn data_sha256(data: &str) -> Result<String> {
    let path = data_path(data);
    if !is_image_source(data) {
        return crate::io::file_sha256(&path);
    }
    let mut both = String::new();
    for stem in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"] {
        both.push_str(&crate::io::file_sha256(&crate::data::idx::find_in(&path, stem)?)?);
    }
    Ok(crate::io::text_sha256(&both))
}

fn image_dir(data: &str) -> PathBuf {
    if data == "mnist" {
        bundled_mnist_dir()
    } else {
        PathBuf::from(data)
    }
}

/// Loads and splits the training data named by `cfg`.
pub fn load(cfg: &TrainConfig) -> Result<Prepared> {
    check_fraction("val-split", cfg.val_split)?;
    check_fraction("test-split", cfg.test_split)?;
    if is_image_source(&cfg.data) {
        load_images(cfg)
    } else {
        load_table(cfg)
    }
}

pub(super) fn check_fraction(name: &str, f: f64) -> Result<()> {
    if (0.0..1.0).contains(&f) {
        Ok(())
    } else {
        Err(Error::config(name, format!("{f} is not in [0, 1)")))
    }
}

/// Splits `data` into (kept, held out) with `fraction` held out, stratified
/// by label; with `fraction` 0, `data` itself is kept (no copy).
fn hold_out(data: Dataset, fraction: f64, seed: u64) -> Result<(Dataset, Option<Dataset>)> {
    if fraction == 0.0 {
        return Ok((data, None));
    }
    let strata: Option<Vec<String>> = data.labels().map(|l| l.iter().map(|c| c.to_string()).collect());
    let (keep, out) = split(data.len(), strata.as_deref(), fraction, seed)?;
    let (kept, held) = data.partition(&keep, &out);
    Ok((kept, Some(held)))
}

fn load_images(cfg: &TrainConfig) -> Result<Prepared> {
    // The folder's test files are read only when they are the test set.
    let own_test = cfg.test.is_empty() && cfg.test_split <= 0.0;
    let (mut train, mnist_test) = match own_test {
        true => load_mnist(&image_dir(&cfg.data)).map(|(a, b)| (a, Some(b)))?,
        false => (load_mnist_train(&image_dir(&cfg.data))?, None),
    };
    if cfg.limit > 0 {
        train = train.head(cfg.limit);
    }
    let test = if !cfg.test.is_empty() {
        let test = load_mnist_test(&image_dir(&cfg.test))?;
        if test.features.cols() != train.features.cols() {
            return Err(Error::Format {
                path: image_dir(&cfg.test),
                reason: format!(
                    "test images have {} pixels, the training images of {} {}",
                    test.features.cols(),
                    cfg.data,
                    train.features.cols()
                ),
            });
        }
        Some(test)
    } else if cfg.test_split > 0.0 {
        let (kept, held) =
            hold_out(train, cfg.test_split, cfg.seed ^ 0x7E57).map_err(|e| for_option(e, "--test-split"))?;
        train = kept;
        held
    } else {
        mnist_test
    };
    let (train, val) = hold_out(train, cfg.val_split, cfg.seed ^ 0x0A11D).map_err(|e| for_option(e, "--val-split"))?;
    let pipeline = Pipeline::Images {
        features: train.features.cols(),
    };
    Prepared::new(train, val, test, pipeline, Vec::new())
}

pub(super) fn csv_options(cfg: &TrainConfig) -> Result<CsvOptions> {
    let delimiter = crate::data::delimiter_byte(cfg.delimiter)?;
    Ok(CsvOptions {
        header: cfg.header_option()?,
        delimiter,
        shifts: Default::default(),
    })
}

pub(super) fn preprocess_spec(cfg: &TrainConfig) -> Result<PreprocessSpec> {
    let task = match cfg.task.as_str() {
        "auto" => None,
        "classify" | "classification" => Some(Task::Classify),
        "regress" | "regression" => Some(Task::Regress),
        t => {
            return Err(Error::config(
                "task",
                format!("unknown '{t}' (expected auto, classify, regress)"),
            ));
        }
    };
    let scaling = match cfg.scaling.as_str() {
        "auto" | "zscore" | "z-score" => Scaling::ZScore,
        "minmax" | "min-max" => Scaling::MinMax,
        "none" => Scaling::None,
        s => {
            return Err(Error::config(
                "scaling",
                format!("unknown '{s}' (expected auto, zscore, minmax, none)"),
            ));
        }
    };
    let impute = match cfg.impute.as_str() {
        "none" | "" => None,
        "mean" => Some(Impute::Mean),
        "median" => Some(Impute::Median),
        i => {
            return Err(Error::config(
                "impute",
                format!("unknown '{i}' (expected none, mean, median)"),
            ));
        }
    };
    let targets = cfg
        .target
        .iter()
        .map(|t| t.parse::<ColumnRef>())
        .collect::<Result<Vec<_>>>()?;
    Ok(PreprocessSpec {
        targets,
        task,
        scaling,
        impute,
        ..PreprocessSpec::default()
    })
}

/// Rows of a table as a dataset, with the fitted preprocessing.
pub fn table_dataset<T: AsTable + ?Sized>(p: &Preprocessor, table: &T, rows: &[usize]) -> Result<Dataset> {
    let table = table.as_table();
    let x = p.transform_features(&*table, rows)?;
    dataset(p, x, p.transform_targets(&*table, rows)?)
}

/// A dataset of features `x` and their targets, with the fitted preprocessing.
pub(super) fn dataset(p: &Preprocessor, x: Matrix<f32>, y: TableTargets) -> Result<Dataset> {
    match y {
        TableTargets::Labels(l) => Dataset::new(x, l, p.n_outputs()),
        TableTargets::Values(v) => Dataset::regression(x, v),
    }
}

fn load_table(cfg: &TrainConfig) -> Result<Prepared> {
    use super::table::{open_table, prepare_all};
    prepare_all(cfg, open_table(cfg)?)
}

/// Labelled data for `bpnet eval`, read with the model's pipeline.
pub fn labelled(pipeline: &Pipeline, data: &str) -> Result<Dataset> {
    labelled_with(pipeline, data, &[])
}

/// [`labelled`] with the target columns a model without preprocessing
/// needs ([`Pipeline::Features`], see [`feature_dataset`]); any other
/// model knows its targets, and `targets` must be empty.
pub fn labelled_with(pipeline: &Pipeline, data: &str, targets: &[ColumnRef]) -> Result<Dataset> {
    pipeline.check_targets(targets, Path::new("the model"))?;
    match pipeline {
        Pipeline::Features { inputs, outputs } => feature_dataset(data, *inputs, *outputs, targets),
        Pipeline::Images { .. } => load_mnist_test(&image_dir(data)),
        Pipeline::Table {
            delimiter,
            header,
            preprocessor,
        } => {
            // Built while the table is released: the data held once.
            let mut table = read_model_table(data, *delimiter, *header, preprocessor)?;
            let all = all_rows(&table);
            let mut sets = preprocessor.take_sets(&mut table, &[&all])?;
            let (x, y) = sets.pop().ok_or_else(|| Error::shape("labelled sets", 1, 0))?;
            dataset(preprocessor, x, y)
        }
    }
}

/// Feature rows for `bpnet predict` (targets may be absent), read with the
/// model's pipeline; for images, the folder's test images (their labels
/// file need not be there).
pub fn unlabelled(pipeline: &Pipeline, data: &str) -> Result<Matrix<f32>> {
    match pipeline {
        Pipeline::Features { inputs, .. } => feature_matrix(data, *inputs),
        Pipeline::Images { .. } => load_mnist_test_images(&image_dir(data)),
        Pipeline::Table {
            delimiter,
            header,
            preprocessor,
        } => {
            let mut table = read_model_table(data, *delimiter, *header, preprocessor)?;
            let all = all_rows(&table);
            preprocessor.take_features(&mut table, &all)
        }
    }
}

fn all_rows(table: &Table) -> Vec<usize> {
    (0..table.len()).collect()
}

/// Reads a CSV the way the training file was read.
fn read_model_table(data: &str, delimiter: char, header: bool, pre: &Preprocessor) -> Result<Table> {
    let delimiter = crate::data::delimiter_byte(delimiter)?;
    read_data(
        Path::new(data),
        &CsvOptions {
            header: Some(header),
            delimiter,
            shifts: pre.shifts(),
        },
        pre.needed_columns().as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::data_sha256;

    /// A folder's digest covers the two training files and nothing else: an
    /// unrelated file leaves it, a changed label file moves it; a file's
    /// digest is its bytes'.
    #[test]
    fn a_folders_digest_covers_its_training_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("train-images-idx3-ubyte"), [0u8, 0, 8, 3, 1, 2, 3]).unwrap();
        std::fs::write(d.join("train-labels-idx1-ubyte"), [0u8, 0, 8, 1, 7]).unwrap();
        let name = d.to_str().unwrap();
        let first = data_sha256(name).unwrap();
        std::fs::write(d.join("README"), "other").unwrap();
        std::fs::write(d.join("t10k-labels-idx1-ubyte"), [1u8]).unwrap();
        assert_eq!(data_sha256(name).unwrap(), first);
        std::fs::write(d.join("train-labels-idx1-ubyte"), [0u8, 0, 8, 1, 6]).unwrap();
        assert_ne!(data_sha256(name).unwrap(), first);
        let file = d.join("README");
        assert_eq!(
            data_sha256(file.to_str().unwrap()).unwrap(),
            crate::io::text_sha256("other")
        );
        assert!(data_sha256(d.join("missing").to_str().unwrap()).is_err());
    }
}
