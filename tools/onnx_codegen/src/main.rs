//! Writes the prost code for `onnx.proto` to the file named by the first
//! argument. Usage: `onnx_codegen PROTO_DIR OUT.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [proto_dir, out] = args.as_slice() else {
        eprintln!("usage: onnx_codegen PROTO_DIR OUT.rs");
        return ExitCode::FAILURE;
    };
    match generate(PathBuf::from(proto_dir), PathBuf::from(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(proto_dir: PathBuf, out: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile([proto_dir.join("onnx.proto")], [&proto_dir])?;
    let tmp = tempdir(&out)?;
    prost_build::Config::new()
        .out_dir(&tmp)
        .compile_fds(descriptors)?;
    let code = std::fs::read_to_string(tmp.join("onnx.rs"))?;
    std::fs::remove_dir_all(&tmp)?;
    std::fs::write(&out, code)?;
    Ok(())
}

fn tempdir(out: &std::path::Path) -> std::io::Result<PathBuf> {
    let dir = out
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join(format!(".onnx_codegen-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
