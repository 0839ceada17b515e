//! `bpnet train` on a CSV file read in chunks (`--stream`, or automatically
//! when it would not fit in memory): the preprocessing fitted in one pass,
//! validation and test rows chosen by a hash of the row index, then either
//! the training rows held in memory (when they fit in the shuffle buffer:
//! the in-memory batch order) or read again every epoch in a shuffled chunk
//! order through the shuffle buffer. See docs/STREAMING.md.

use super::progress::Progress;
use super::train::{TrainArgs, checkpoint_path, finish};
use bpnet::data::Dataset;
use bpnet::data::table::ChunkReader;
use bpnet::io::{RunCheckpoint, save_run};
use bpnet::loss::Loss;
use bpnet::train::{DatasetSource, Event, FitConfig, History, Resume, Validation, fit_source};
use bpnet::workflow::stream::{Role, StreamFile, StreamSource, buffer_rows, open_train_stream, stream_metrics};
use bpnet::workflow::{Pipeline, Prepared, TestMetrics, TrainConfig, fit_config, model_spec, optimizer};
use bpnet::{Combine, EnsembleNet, Error, Matrix, ModelSpec, Optimizer, Result, Sequential, Trainer};
use std::path::PathBuf;

/// Options a streamed run cannot honour, as an error naming the first.
pub(super) fn refuse(a: &TrainArgs, cfg: &TrainConfig, size: usize) -> Result<()> {
    let bad = [
        (size > 1, "mpirun (data-parallel training)"),
        (cfg.ensemble > 1, "--ensemble"),
        (a.cv_given(), "--cv"),
        (cfg.lr_auto, "--lr auto"),
    ];
    match bad.iter().find(|b| b.0) {
        Some((_, what)) => Err(Error::config(
            "--stream",
            format!("{what} is not available while streaming the data; use --no-stream on a machine where it fits"),
        )),
        None => Ok(()),
    }
}

/// The streamed training data: the file, the rows held in memory (the
/// validation rows, and the training rows when they fit in the buffer).
struct Streamed {
    file: StreamFile,
    data: Prepared,
    /// Shuffle buffer rows.
    cap: usize,
    /// Bytes of text per chunk.
    chunk: usize,
    /// Training rows.
    rows: usize,
    resident: bool,
    /// Validation rows, held in `data.val` when they fit in the shuffle
    /// buffer, else evaluated by reading the file again every epoch.
    val_rows: usize,
}

/// The shuffle buffer (rows) and chunk size (bytes) a checkpoint of a
/// streamed run recorded, which its resume keeps.
#[derive(Clone, Copy)]
struct Recorded {
    buffer_rows: usize,
    chunk_bytes: usize,
}

impl Recorded {
    fn of(run: &RunCheckpoint) -> Option<Self> {
        let s = run.file.metadata.get("stream")?;
        let get = |k: &str| s.get(k).and_then(serde_json::Value::as_u64).map(|v| v as usize);
        Some(Recorded {
            buffer_rows: get("buffer_rows")?,
            chunk_bytes: get("chunk_bytes")?,
        })
    }
}

/// Opens and fits the file, chooses the buffer, collects the held rows. A
/// resumed run takes the buffer and chunk size its checkpoint recorded (the
/// default buffer follows the available memory, which may have changed).
fn open(cfg: &TrainConfig, full_batch: bool, say: &dyn Fn(&str), recorded: Option<Recorded>) -> Result<Streamed> {
    let chunk = match recorded {
        Some(r) => r.chunk_bytes,
        None => bpnet::workflow::stream::chunk_bytes()?,
    };
    let mut file = open_train_stream(cfg, chunk)?;
    file.notes.iter().for_each(|n| say(n));
    let pre = file.preprocessor.clone();
    let (cap, why) = match recorded {
        // A buffer asked for now that is not the checkpoint's would change
        // the batch order: refused, as flags of another network are.
        Some(r) if cfg.shuffle_buffer != 0 && cfg.shuffle_buffer != r.buffer_rows => {
            return Err(Error::config(
                "--shuffle-buffer",
                format!(
                    "{}: the checkpoint trained with a buffer of {} rows, which a resume keeps (its batch order depends on it); drop the flag",
                    cfg.shuffle_buffer, r.buffer_rows
                ),
            ));
        }
        Some(r) => (r.buffer_rows, "the checkpoint's".to_string()),
        None => buffer_rows(cfg.shuffle_buffer, pre.n_features(), pre.n_outputs())?,
    };
    let n = file.counts[0];
    let resident = n <= cap;
    if (full_batch || cfg.diagnostics) && !resident {
        let what = if full_batch {
            "--optimizer gd (full batch)"
        } else {
            "--diagnostics"
        };
        return Err(Error::config(
            "--stream",
            format!("{what} needs every training row in memory: {n} rows do not fit in the shuffle buffer of {cap}"),
        ));
    }
    let val_rows = file.counts[1];
    let hold_val = val_rows > 0 && val_rows <= cap;
    let roles: Vec<Role> = [(resident, Role::Train), (hold_val, Role::Val)]
        .iter()
        .filter_map(|&(on, role)| on.then_some(role))
        .collect();
    // Validation rows not held are read by every epoch's validation: read
    // them once now, so that one they cannot be read with stops the run
    // before training, not after its first epoch with nothing saved.
    let check: &[Role] = match val_rows > 0 && !hold_val {
        true => &[Role::Val],
        false => &[],
    };
    let mut sets = file.collect_checking(&roles, check)?;
    let val = match hold_val {
        true => sets.pop().filter(|v| !v.is_empty()),
        false => None,
    };
    if val_rows > 0 && !hold_val {
        say(&format!(
            "note: the {val_rows} validation rows do not fit in the shuffle buffer of {cap} rows; every epoch's validation reads the file again"
        ));
    }
    let train = match sets.pop() {
        Some(t) => t,
        None => empty_like(&pre, pre.class_names().is_none())?,
    };
    say(&match resident {
        true => format!(
            "note: the {n} training rows fit in the shuffle buffer ({cap} rows: {why}); they are held in memory and batched as in memory"
        ),
        false => format!(
            "note: a shuffle buffer of {cap} rows ({why}) over {n} training rows in {} chunks; every epoch reads the file again, chunks in a shuffled order",
            file.spans.len()
        ),
    });
    let pipeline = Pipeline::Table {
        delimiter: cfg.delimiter,
        header: file.reader.has_header(),
        preprocessor: pre,
    };
    let data = Prepared {
        train,
        val,
        test: None,
        pipeline,
        notes: Vec::new(),
    };
    Ok(Streamed {
        file,
        data,
        cap,
        chunk,
        rows: n,
        resident,
        val_rows,
    })
}

/// The network (fresh from `cfg.seed`, or the checkpoint's) and its trainer.
fn trainer(
    cfg: &TrainConfig,
    pre: &bpnet::data::Preprocessor,
    opt: bpnet::OptimizerConfig,
    resumed: Option<RunCheckpoint>,
    say: &dyn Fn(&str),
) -> Result<(ModelSpec, Trainer<f32>, Option<Resume>)> {
    let loss = if pre.class_names().is_none() {
        Loss::Mse
    } else {
        Loss::CrossEntropy
    };
    Ok(match resumed {
        Some(run) => {
            let mut trainer = Trainer::new(run.file.model.clone(), Optimizer::new(opt)?, loss);
            run.restore_optimizer(&mut trainer.optimizer, &mut trainer.model)?;
            bpnet::workflow::apply_label_smoothing(&mut trainer, cfg)?;
            say(&format!("resuming at step {}", run.resume.state.step));
            (run.file.spec.clone(), trainer, Some(run.resume))
        }
        None => {
            let spec = model_spec(cfg, pre.n_features(), pre.n_outputs())?;
            let model = Sequential::<f32>::from_spec(&spec, cfg.seed)?;
            let mut trainer = Trainer::new(model, Optimizer::new(opt)?, loss);
            bpnet::workflow::apply_label_smoothing(&mut trainer, cfg)?;
            (spec, trainer, None)
        }
    })
}

/// A checkpoint resumes with its network, on the bytes and the rows it
/// trained on (as in memory: [`super::train`]).
fn check_resumed(
    run: &RunCheckpoint,
    ckpt: &std::path::Path,
    cfg: &TrainConfig,
    s: &Streamed,
    sha: Option<&str>,
) -> Result<()> {
    let pre = &s.file.preprocessor;
    super::train::check_resume(ckpt, &run.file.spec, cfg, pre.n_features(), pre.n_outputs())?;
    // A checkpoint that recorded no stream settings was written before the
    // one-pass fit shifted its values (its z-score scales differ in their
    // last bits): compared within 1e-12, and the run goes on with this
    // version's fit.
    let earlier = run.file.metadata.get("stream").is_none();
    let held = (
        run.file.metadata.get("preprocessing"),
        run.file.bpnet_version.as_str(),
        if earlier { 1e-12 } else { 0.0 },
    );
    super::train::check_same_rows(ckpt, held, &s.data.pipeline, cfg)?;
    super::train::check_same_data(ckpt, run.file.metadata.get("data_sha256"), sha, cfg)
}

/// Trains on `cfg.data` streamed; `note` says why it streams.
pub fn run(a: &TrainArgs, cfg: &TrainConfig, resumed: Option<RunCheckpoint>, note: &str, size: usize) -> Result<()> {
    refuse(a, cfg, size)?;
    let quiet = a.is_quiet();
    let say = |s: &str| {
        if !quiet {
            println!("{s}");
        }
    };
    say(note);
    let (opt, full_batch) = optimizer(cfg)?;
    let mut s = open(cfg, full_batch, &say, resumed.as_ref().and_then(Recorded::of))?;
    let data_sha = super::train::checkpoint_data_sha256(cfg, a.resume.is_some())?;
    if let (Some(run), Some(ckpt)) = (&resumed, a.resume.as_deref()) {
        check_resumed(run, ckpt, cfg, &s, data_sha.as_deref())?;
    }
    let saved_diagnostics = resumed
        .as_ref()
        .and_then(|r| r.file.metadata.get("diagnostics").cloned());
    let (spec, mut trainer, resume) = trainer(cfg, &s.file.preprocessor, opt, resumed, &say)?;
    let fit_cfg = fit_config(cfg, full_batch, s.val_rows > 0)?;
    if let Some(b) = a.batch_size_given().filter(|&b| b > s.rows) {
        return Err(Error::config(
            "--batch-size",
            format!("{b} is larger than the {} training rows", s.rows),
        ));
    }
    if let Some(note) = super::config::batch_note(a.config_given(), a.batch_size_given(), cfg.batch_size, s.rows) {
        say(&note);
    }
    say(&format!("model:\n{}", trainer.model.summary()));
    say(&format!(
        "training on {} rows ({} validation, {} test)",
        s.rows, s.val_rows, s.file.counts[2]
    ));
    if !cfg.test.is_empty() {
        // A column the test file lacks is seen from its header: refused
        // now, as in memory, not after training (its rows are read then).
        open_test(cfg, &s.file.preprocessor)?;
    }
    let out = PathBuf::from(&cfg.out);
    let mut extras = super::diagnostics::TrainExtras::new(cfg.diagnostics, cfg.plot, &s.data.train);
    if let (Some(ckpt), Some(r)) = (&a.resume, &resume) {
        let note = extras.resume(saved_diagnostics.as_ref(), ckpt, r.state.step)?;
        note.iter().for_each(|n| say(n));
    }
    let run = (&spec, &mut trainer, data_sha.as_deref());
    let history = train(cfg, &mut s, run, &fit_cfg, resume, &mut extras, quiet)?;
    history.notes.iter().for_each(|n| say(n));
    // The test rows are first read after training: a cell they cannot be
    // read with fails the scoring, not the run (hours of training are not
    // thrown away for one bad test cell), and the error says so.
    let (test, failed) = match test_metrics(cfg, &mut s.file, &trainer.model, trainer.loss, &s.data.pipeline) {
        Ok(t) => (t, None),
        Err(e) => (None, Some(e)),
    };
    finish(
        a,
        cfg,
        &s.data,
        &spec,
        &[trainer.model],
        (&history, test),
        (None, &extras),
    )?;
    match failed {
        Some(e) => Err(unscored(e, &out)),
        None => Ok(()),
    }
}

/// The error of test rows that could not be scored, with where the trained
/// model was written.
fn unscored(e: Error, out: &std::path::Path) -> Error {
    let note = format!(
        "; the trained model and its history were written to {} without test metrics",
        out.display()
    );
    match e {
        Error::Format { path, reason } => Error::Format {
            path,
            reason: reason + &note,
        },
        Error::Config { field, reason } => Error::Config {
            field,
            reason: reason + &note,
        },
        other => Error::State(format!("{other}{note}")),
    }
}

/// The training loop over the held rows or the streamed file, with
/// progress, checkpoints and, on divergence, the last good weights saved.
fn train(
    cfg: &TrainConfig,
    s: &mut Streamed,
    (spec, trainer, data_sha): (&ModelSpec, &mut Trainer<f32>, Option<&str>),
    fit_cfg: &FitConfig,
    resume: Option<Resume>,
    extras: &mut super::diagnostics::TrainExtras,
    quiet: bool,
) -> Result<History> {
    let out = PathBuf::from(&cfg.out);
    let ckpt = checkpoint_path(&out);
    let data = &s.data;
    let stream = serde_json::json!({"buffer_rows": s.cap, "chunk_bytes": s.chunk});
    let meta = || {
        bpnet::workflow::metadata(cfg, data, None, None)
            .with_data_sha256(data_sha)
            .with_stream(Some(stream.clone()))
    };
    let mut progress = Progress::new(quiet);
    // The epochs so far, for the history a diverged run leaves.
    let mut epochs: Vec<bpnet::train::EpochRecord> =
        resume.as_ref().map_or(Vec::new(), |r| r.state.history.epochs.clone());
    let mut on_event = |e: Event<'_>| -> Result<()> {
        if let Event::Epoch(record, _) = &e {
            epochs.push((*record).clone());
        }
        progress.event(&e);
        extras.observe(&e)?;
        if let Event::Checkpoint { trainer, state, best } = e {
            save_run(
                &ckpt,
                spec,
                trainer,
                state,
                best,
                &meta().with_diagnostics(extras.saved()),
            )?;
        }
        Ok(())
    };
    let mut streamed_val = match (&data.val, s.val_rows) {
        (None, 1..) => Some(val_pass(cfg, &s.file, trainer.loss)?),
        _ => None,
    };
    let val = match streamed_val.as_mut() {
        Some(pass) => Validation::Pass(pass),
        None => Validation::rows(data.val.as_ref()),
    };
    let fitted = if s.resident {
        fit_source(
            trainer,
            &mut DatasetSource(&data.train),
            val,
            fit_cfg,
            resume,
            &mut on_event,
        )
    } else {
        let min_batch = if trainer.model.has_batch_norm() { 2 } else { 1 };
        let batch = fit_cfg.batch_size.unwrap_or(s.rows);
        let mut source = StreamSource::new(&mut s.file, batch, min_batch, s.cap, fit_cfg.seed)?;
        fit_source(trainer, &mut source, val, fit_cfg, resume, &mut on_event)
    };
    progress.finish();
    match fitted {
        Err(e @ Error::Diverged { .. }) => {
            let e = super::train::weights_kept(e)?;
            let history = super::train::diverged_history(epochs, &e);
            let meta = bpnet::workflow::metadata(cfg, data, Some(&history), None);
            let save = || super::train::save_diverged(&out, spec, &trainer.model, &meta, &history);
            Err(super::train::after_divergence(
                e,
                &out,
                true,
                "the weights from before this step were saved",
                save,
            ))
        }
        other => other,
    }
}

/// The validation of the rows of `file` that its split makes validation
/// rows, read from a reader of its own every epoch (groups of
/// [`bpnet::workflow::stream::GROUP`] rows, the fused network): `(mean loss,
/// accuracy or R²)`.
fn val_pass(
    cfg: &TrainConfig,
    file: &StreamFile,
    loss: Loss,
) -> Result<impl FnMut(&Sequential<f32>) -> Result<(f64, f64)> + use<>> {
    // The training reader's settled header question, not the flag's.
    let opts = bpnet::data::CsvOptions {
        shifts: Default::default(),
        header: Some(file.reader.has_header()),
        delimiter: bpnet::data::delimiter_byte(cfg.delimiter)?,
    };
    let mut reader = ChunkReader::open(
        std::path::Path::new(&cfg.data),
        &opts,
        bpnet::workflow::stream::chunk_bytes()?,
    )?;
    reader.set_progress(false);
    let (held, split) = (file.preprocessor.for_held_out(), file.split);
    Ok(move |model: &Sequential<f32>| {
        let net = EnsembleNet::new(
            std::slice::from_ref(model),
            Combine::for_loss(loss, model.out_features().unwrap_or(1)),
        )?;
        let m = stream_metrics(&mut reader, &held, &|r| split.role(r) == Role::Val, &net, loss)?;
        reader.end_pass();
        Ok(m.loss_and_metric())
    })
}

/// A dataset of no rows with the targets' kind (for the model file's
/// ensemble combination when the training rows are not held).
fn empty_like(pre: &bpnet::data::Preprocessor, regression: bool) -> Result<Dataset> {
    let x = Matrix::zeros(0, pre.n_features());
    match regression {
        true => Dataset::regression(x, Matrix::zeros(0, pre.n_outputs())),
        false => Dataset::new(x, Vec::new(), pre.n_outputs()),
    }
}

/// Test metrics, streamed: `--test FILE` whole, or the `--test-split` rows.
/// The `--test` file's reader (set for the preprocessing's header and
/// shifts), its columns checked ([`bpnet::workflow::stream::check_columns`]).
fn open_test(cfg: &TrainConfig, pre: &bpnet::data::preprocess::Preprocessor) -> Result<ChunkReader> {
    let opts = bpnet::data::CsvOptions {
        header: Some(pre.has_header()),
        delimiter: bpnet::data::delimiter_byte(cfg.delimiter)?,
        shifts: pre.shifts(),
    };
    let path = std::path::Path::new(&cfg.test);
    let mut reader = ChunkReader::open(path, &opts, bpnet::workflow::stream::chunk_bytes()?)?;
    bpnet::workflow::stream::check_columns(&mut reader, pre, true)?;
    Ok(reader)
}

fn test_metrics(
    cfg: &TrainConfig,
    file: &mut StreamFile,
    model: &Sequential<f32>,
    loss: Loss,
    pipeline: &Pipeline,
) -> Result<Option<TestMetrics>> {
    let net = EnsembleNet::new(
        std::slice::from_ref(model),
        Combine::for_loss(loss, model.out_features().unwrap_or(1)),
    )?;
    let pre = &file.preprocessor;
    let m = if !cfg.test.is_empty() {
        stream_metrics(&mut open_test(cfg, pre)?, pre, &|_| true, &net, loss)?
    } else if file.counts[2] > 0 {
        let split = file.split;
        stream_metrics(
            &mut file.reader,
            &pre.for_held_out(),
            &|r| split.role(r) == Role::Test,
            &net,
            loss,
        )?
    } else {
        return Ok(None);
    };
    Ok(Some(m.finish(pipeline)))
}
