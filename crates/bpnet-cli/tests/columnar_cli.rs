//! `bpnet train`, `eval` and `predict` on a Parquet file (made here from a
//! CSV with the engine's writer), and `predict --output x.parquet`: the
//! same model and predictions as from the CSV.
#![cfg(feature = "columnar")]

mod common;
use common::ok;

fn csv() -> String {
    let mut s = String::from("x1,x2,kind,label\n");
    for i in 0..240 {
        let (a, b) = ((i * 37 % 101) as f64 / 10.0, (i * 53 % 89) as f64 / 9.0);
        let kind = ["p", "q", "r"][i % 3];
        s += &format!("{a},{b},{kind},{}\n", if a + b > 10.0 { "big" } else { "small" });
    }
    s
}

#[test]
fn parquet_trains_evaluates_and_predicts_like_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("t.csv"), csv()).unwrap();
    let bytes = bpnet::data::table::csv_to_parquet(&csv(), &d.join("t.parquet")).unwrap();
    std::fs::write(d.join("t.parquet"), bytes).unwrap();
    let train = |data: &str, out: &str| ok(d, &["train", "--data", data, "--epochs", "3", "--out", out, "--quiet"]);
    train("t.csv", "a.safetensors");
    train("t.parquet", "b.safetensors");
    let eval = |m: &str, data: &str| ok(d, &["eval", "--model", m, "--data", data]);
    // The same data gives the same model: the same metrics on either file.
    let e = eval("a.safetensors", "t.csv");
    assert_eq!(e, eval("b.safetensors", "t.csv"));
    assert_eq!(e, eval("a.safetensors", "t.parquet"));
    let csv_preds = ok(d, &["predict", "--model", "a.safetensors", "--data", "t.parquet"]);
    assert_eq!(
        csv_preds,
        ok(d, &["predict", "--model", "a.safetensors", "--data", "t.csv"])
    );
    ok(
        d,
        &[
            "predict",
            "--model",
            "a.safetensors",
            "--data",
            "t.parquet",
            "--output",
            "p.parquet",
        ],
    );
    let p = bpnet::data::read_data(&d.join("p.parquet"), &Default::default(), None).unwrap();
    assert!(p.is_columnar());
    assert_eq!(p.columns, ["prediction", "p_big", "p_small"]);
    assert_eq!(p.len(), 240);
    // The file holds what predict prints: class names and probabilities.
    let lines: Vec<&str> = csv_preds.lines().skip(1).collect();
    for (r, line) in lines.iter().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(p.cell_text(r, 0), cells[0]);
        let prob: f64 = cells[1].parse().unwrap();
        // Read back through f32 offsets: equal to f32 rounding.
        let back: f64 = p.cell_text(r, 1).parse().unwrap();
        assert!((back - prob).abs() <= 1e-6, "row {r}: {back} vs {prob}");
    }
}
