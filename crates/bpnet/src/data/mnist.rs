//! MNIST in IDX format: 28x28 images as 784 features scaled to [0, 1], ten
//! classes. The full dataset ships with bpnet in `data/mnist/`.

use super::Dataset;
use super::idx::{find_in, read_idx};
use crate::error::{Error, Result};
use crate::tensor::Matrix;
use std::path::{Path, PathBuf};

/// The folder of the bundled MNIST: `$BPNET_DATA_DIR/mnist` if set, else
/// `data/mnist` under the current directory, else the source checkout's.
pub fn bundled_mnist_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BPNET_DATA_DIR") {
        return PathBuf::from(d).join("mnist");
    }
    let local = PathBuf::from("data/mnist");
    if local.is_dir() {
        return local;
    }
    // The engine crate lives in crates/bpnet of the checkout.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

/// Loads `(train, test)` from a folder holding `train-images-idx3-ubyte`,
/// `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
/// `t10k-labels-idx1-ubyte`, each optionally `.gz`.
pub fn load_mnist(dir: &Path) -> Result<(Dataset, Dataset)> {
    let train = load_split(dir, "train")?;
    let test = load_split(dir, "t10k")?;
    if train.features.cols() != test.features.cols() {
        return Err(Error::Format {
            path: dir.to_path_buf(),
            reason: format!(
                "training images have {} pixels, test images {}",
                train.features.cols(),
                test.features.cols()
            ),
        });
    }
    Ok((train, test))
}

/// The training images of an MNIST-format folder alone (`train-*` files;
/// the `t10k-*` files need not be there).
pub fn load_mnist_train(dir: &Path) -> Result<Dataset> {
    load_split(dir, "train")
}

/// The test images of an MNIST-format folder alone (`t10k-*` files; the
/// `train-*` files need not be there).
pub fn load_mnist_test(dir: &Path) -> Result<Dataset> {
    load_split(dir, "t10k")
}

/// The test images of an MNIST-format folder as an `n x pixels` matrix in
/// [0, 1], without their labels: `t10k-images-idx3-ubyte` (or `.gz`) alone
/// need be there (`bpnet predict` on new, unlabelled images).
pub fn load_mnist_test_images(dir: &Path) -> Result<Matrix<f32>> {
    read_images(&find_in(dir, "t10k-images-idx3-ubyte")?)
}

/// An IDX image file as `n x pixels` values in [0, 1].
fn read_images(path: &Path) -> Result<Matrix<f32>> {
    let images = read_idx(path, 3)?;
    let (n, pixels) = (images.dims[0], images.dims[1] * images.dims[2]);
    let features = images.data.iter().map(|&p| p as f32 / 255.0).collect();
    Matrix::from_vec(n, pixels, features)
}

fn load_split(dir: &Path, prefix: &str) -> Result<Dataset> {
    let img_path = find_in(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lbl_path = find_in(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let features = read_images(&img_path)?;
    let labels = read_idx(&lbl_path, 1)?;
    let n = features.rows();
    if labels.dims[0] != n {
        return Err(Error::Format {
            path: lbl_path,
            reason: format!("{} labels but {} has {n} images", labels.dims[0], img_path.display()),
        });
    }
    if let Some(row) = labels.data.iter().position(|&l| l > 9) {
        return Err(Error::Format {
            path: lbl_path,
            reason: format!("label {} at index {row} is not a digit 0-9", labels.data[row]),
        });
    }
    Dataset::new(features, labels.data.iter().map(|&l| l as usize).collect(), 10)
}
