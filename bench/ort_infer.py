"""ONNX Runtime peer of `bpnet bench --inference --fused --model M`: times
`session.run` of an exported bpnet model on random inputs, through the
Python API (as a user serving the model would call it).

    python bench/ort_infer.py --onnx W1.onnx --batch-size 1000 --steps 400 --threads 2 --json

The session uses every graph optimization (ORT_ENABLE_ALL), `threads` intra-op
threads and one inter-op thread, sequential execution. Eight distinct random
batches are cycled through, as in `bpnet bench`. The last line is JSON with
`ms_per_step` like bpnet's.

Each timed step is one Python call, so its time includes CPython's call
overhead; by default `session.run` also builds the input dictionary and
allocates a new output array each call. `--iobinding` binds every input
batch and one preallocated output once (`run_with_iobinding`), as bpnet
writes into a buffer it reuses: only the call and the graph are timed.
"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--onnx", required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--iobinding", action="store_true", help="bound inputs and a preallocated output")
    a = p.parse_args()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    width = inp.shape[1]
    rng = np.random.default_rng(7)
    pool = [rng.random((a.batch_size, width), dtype=np.float32) for _ in range(8)]
    step = bound_steps(sess, inp.name, pool) if a.iobinding else (lambda i: sess.run(None, {inp.name: pool[i % 8]}))
    for i in range(a.warmup):
        step(i)
    start = time.perf_counter()
    for i in range(a.steps):
        step(i)
    secs = time.perf_counter() - start
    ms = secs * 1e3 / a.steps
    print(f"{a.steps} ORT runs of {a.onnx}, batch {a.batch_size}, {a.threads} threads: {ms:.4f} ms/run")
    if a.json:
        print(json.dumps({"ms_per_step": ms, "steps": a.steps, "batch_size": a.batch_size, "threads": a.threads,
                          "onnxruntime": ort.__version__, "iobinding": a.iobinding}))


def bound_steps(sess, name, pool):
    """A step function over one IO binding per input batch, all writing one
    preallocated output."""
    out = sess.get_outputs()[0]
    batch = pool[0].shape[0]
    width = out.shape[1]
    result = ort.OrtValue.ortvalue_from_numpy(np.zeros((batch, width), dtype=np.float32))
    bindings = []
    for x in pool:
        b = sess.io_binding()
        b.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(x))
        b.bind_ortvalue_output(out.name, result)
        bindings.append(b)
    return lambda i: sess.run_with_iobinding(bindings[i % 8])


if __name__ == "__main__":
    main()
