"""ONNX Runtime peer of `bpnet bench --inference --fused --model M`: times
`session.run` of an exported bpnet model on random inputs, through the
Python API (as a user serving the model would call it).

    python bench/ort_infer.py --onnx W1.onnx --batch-size 1000 --steps 400 --threads 2 --json

The session uses every graph optimization (ORT_ENABLE_ALL), `threads` intra-op
threads and one inter-op thread, sequential execution. Eight distinct random
batches are cycled through, as in `bpnet bench`. The last line is JSON with
`ms_per_step` like bpnet's.
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
    for i in range(a.warmup):
        sess.run(None, {inp.name: pool[i % 8]})
    start = time.perf_counter()
    for i in range(a.steps):
        sess.run(None, {inp.name: pool[i % 8]})
    secs = time.perf_counter() - start
    ms = secs * 1e3 / a.steps
    print(f"{a.steps} ORT runs of {a.onnx}, batch {a.batch_size}, {a.threads} threads: {ms:.4f} ms/run")
    if a.json:
        print(json.dumps({"ms_per_step": ms, "steps": a.steps, "batch_size": a.batch_size, "threads": a.threads,
                          "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()
