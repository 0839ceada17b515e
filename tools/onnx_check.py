"""Checks ONNX models exported by bpnet with the ONNX checker and ONNX Runtime.

Usage: python tools/onnx_check.py MANIFEST.json RESULTS.json

Run by tests/onnx_runtime.rs with the interpreter of the virtual environment
that tools/onnx_env.sh creates (onnx, onnxruntime and numpy from PyPI).

MANIFEST.json: {"cases": [case, ...]}, each case
    {"name": str, "onnx": path, "input_name": str, "output_name": str,
     "opset": int, "ir_version": int,
     "input": [[float | null, ...], ...],     # raw rows; null = missing (NaN)
     "input_dtype": "float64",                # optional; float32 when absent
     "output_dtype": "float64",               # optional; float32 when absent
     "expected": [[float, ...], ...],         # bpnet's outputs for those rows
     "metadata": {key: value, ...}}           # entries metadata_props must hold

For every case this script
  1. runs onnx.checker.check_model(model, full_check=True) (which includes
     strict shape inference),
  2. checks the opset and IR version, the input and output names, that both
     are float [batch, width] with a symbolic batch dimension, and the
     expected metadata_props entries,
  3. runs the model in ONNX Runtime (CPU, one thread) on all rows at once and
     on the first row alone, and records the largest absolute difference from
     "expected" in each run.

RESULTS.json: {name: {"max_abs_diff": float, "max_abs_diff_one_row": float,
"max_abs_expected": float, "error": str | null}}. The bounds are asserted by
the Rust test; this script exits 1 only when a case could not be checked.
"""

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def dims(value_info):
    shape = value_info.type.tensor_type.shape
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in shape.dim]


def check_structure(model, case):
    onnx.checker.check_model(model, full_check=True)
    opsets = {o.domain: o.version for o in model.opset_import}
    if opsets.get("", opsets.get("ai.onnx")) != case["opset"]:
        raise ValueError(f"opset {opsets}, expected {case['opset']}")
    if model.ir_version != case["ir_version"]:
        raise ValueError(f"IR version {model.ir_version}, expected {case['ir_version']}")
    graph = model.graph
    if [i.name for i in graph.input] != [case["input_name"]]:
        raise ValueError(f"inputs {[i.name for i in graph.input]}, expected [{case['input_name']}]")
    if [o.name for o in graph.output] != [case["output_name"]]:
        raise ValueError(f"outputs {[o.name for o in graph.output]}, expected [{case['output_name']}]")
    width_in = len(case["input"][0])
    width_out = len(case["expected"][0])
    def elem(key):
        return onnx.TensorProto.DOUBLE if case.get(key) == "float64" else onnx.TensorProto.FLOAT

    for vi, width, kind in ((graph.input[0], width_in, elem("input_dtype")), (graph.output[0], width_out, elem("output_dtype"))):
        if vi.type.tensor_type.elem_type != kind:
            raise ValueError(f"{vi.name} is not {onnx.TensorProto.DataType.Name(kind)}")
        if dims(vi) != ["batch", width]:
            raise ValueError(f"{vi.name} has dims {dims(vi)}, expected ['batch', {width}]")
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in case.get("metadata", {}).items():
        if props.get(key) != value:
            raise ValueError(f"metadata_props[{key!r}] = {props.get(key)!r}, expected {value!r}")


def run(case):
    model = onnx.load(case["onnx"])
    check_structure(model, case)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(case["onnx"], options, providers=["CPUExecutionProvider"])
    dtype = np.dtype(case.get("input_dtype", "float32"))
    x = np.array([[np.nan if v is None else v for v in row] for row in case["input"]], dtype=dtype)
    want = np.array(case["expected"], dtype=np.float64)
    (y,) = session.run([case["output_name"]], {case["input_name"]: x})
    (y1,) = session.run([case["output_name"]], {case["input_name"]: x[:1]})
    if y.shape != want.shape or y1.shape != want[:1].shape:
        raise ValueError(f"output shapes {y.shape} and {y1.shape}, expected {want.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("non-finite output")
    return {
        "max_abs_diff": float(np.max(np.abs(y.astype(np.float64) - want))),
        "max_abs_diff_one_row": float(np.max(np.abs(y1.astype(np.float64) - want[:1]))),
        "max_abs_expected": float(np.max(np.abs(want))),
        "error": None,
    }


def main():
    manifest_path, results_path = sys.argv[1], sys.argv[2]
    with open(manifest_path) as f:
        cases = json.load(f)["cases"]
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, numpy {np.__version__}")
    results, failed = {}, 0
    for case in cases:
        try:
            results[case["name"]] = run(case)
        except Exception as e:  # reported per case, asserted by the Rust test
            failed += 1
            results[case["name"]] = {"error": f"{type(e).__name__}: {e}"}
            print(f"{case['name']}: {type(e).__name__}: {e}")
    with open(results_path, "w") as f:
        json.dump(results, f, indent=1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
