"""Benchmark harness behind scripts/bench-asr: times `minutes transcribe` against
faster-whisper's sequential and batched pipelines on the same audio and model.

Each measurement is a fresh process (so peak RSS is per run); every configuration runs
--runs times and the median is reported, interleaved so that background load hits all of
them alike. Times are transcription only (model loaded, audio decoded), plus the whole
process wall time for reference. Word error rates use `minutes wer`, one normaliser for all.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

FASTER_WHISPER_RUN = r"""
import json, sys, time
from faster_whisper import WhisperModel, BatchedInferencePipeline, decode_audio
model_dir, audio_path, mode, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
audio = decode_audio(audio_path)
start = time.perf_counter()
if mode == "batched":
    segments, _ = BatchedInferencePipeline(model).transcribe(audio, beam_size=5, batch_size=8, language="en")
else:
    segments, _ = model.transcribe(audio, beam_size=5, language="en")
text = " ".join(segment.text.strip() for segment in segments)
print(json.dumps({"transcribe_seconds": time.perf_counter() - start, "text": text}))
"""


def run(command):
    """Runs command, returning (stdout, stderr, wall seconds)."""
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{process.stderr}")
    return process.stdout, process.stderr, wall


def peak_rss_mib(command):
    """Peak RSS of one separate run of command, from the kernel's rusage of that child."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        sys.exit(f"{command[0]} failed while measuring memory")
    return usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", required=True)
    parser.add_argument("--python", required=True, help="python of the faster-whisper venv")
    parser.add_argument("--model", required=True)
    parser.add_argument("--audio", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bench-asr-")
    fw_script = os.path.join(work, "fw_run.py")
    with open(fw_script, "w") as f:
        f.write(FASTER_WHISPER_RUN)

    commands = {
        "minutes": [args.minutes, "transcribe", args.audio, "--model", args.model,
                    "--threads", str(args.threads), "--beam-size", "5", "--compute-type", "int8",
                    "--language", "en", "--speakers", "off",
                    "--timings"],
        "fw-sequential": [args.python, fw_script, args.model, args.audio, "sequential", str(args.threads)],
        "fw-batched": [args.python, fw_script, args.model, args.audio, "batched", str(args.threads)],
    }
    results = {name: {"times": [], "walls": [], "text": ""} for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            stdout, stderr, wall = run(command)
            if name == "minutes":
                timings = json.loads(stderr.strip().splitlines()[-1])
                results[name]["times"].append(timings["transcribe_seconds"])
                results[name]["text"] = stdout
                audio_seconds = timings["audio_seconds"]
            else:
                out = json.loads(stdout)
                results[name]["times"].append(out["transcribe_seconds"])
                results[name]["text"] = out["text"]
            results[name]["walls"].append(wall)
    for name, command in commands.items():
        results[name]["rss"] = peak_rss_mib(command)
        hypothesis = os.path.join(work, f"{name}.txt")
        with open(hypothesis, "w") as f:
            f.write(results[name]["text"])
        wer = subprocess.run([args.minutes, "wer", args.reference, hypothesis, "--json"],
                             capture_output=True, text=True, check=True)
        results[name]["wer"] = json.loads(wer.stdout)["wer"]

    print(f"audio: {args.audio} ({audio_seconds:.1f} s), model: {args.model}")
    print(f"beam 5, int8, {args.threads} threads, {args.runs} runs each (median; min-max)")
    print()
    header = f"{'pipeline':<15} {'transcribe s':>13} {'range':>13} {'RTF':>7} {'process s':>10} {'peak RSS':>10} {'WER':>7}"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        median = statistics.median(r["times"])
        print(f"{name:<15} {median:>13.2f} {min(r['times']):>6.2f}-{max(r['times']):<6.2f}"
              f" {median / audio_seconds:>7.4f} {statistics.median(r['walls']):>10.2f}"
              f" {r['rss']:>7.0f} MiB {r['wer'] * 100:>6.2f}%")
    ours = statistics.median(results["minutes"]["times"])
    batched = statistics.median(results["fw-batched"]["times"])
    sequential = statistics.median(results["fw-sequential"]["times"])
    print()
    print(f"minutes / faster-whisper batched:    {ours / batched:.2f}x the time")
    print(f"minutes / faster-whisper sequential: {ours / sequential:.2f}x the time")
    time_ok = ours <= 0.75 * batched
    print(f"target time <= 0.75x batched:    {'met' if time_ok else 'NOT met'}")


if __name__ == "__main__":
    main()
