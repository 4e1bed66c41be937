"""Recognition evaluation behind scripts/eval-asr: our transcripts against faster-whisper's
(sequential and batched) on the same clips, the same model folder and the same threads.

For each clip and model it prints the word error rate against the reference (one
normaliser for all: `minutes wer`), the share of reference words kept (neither deleted nor
substituted), the longest run of back-to-back segments with the same words (a loop), and
the languages of the segments in order. Clips without a reference transcript (the AMI
excerpts) get the loop and word counts only. Results also go to --json.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

FASTER_WHISPER_RUN = r"""
import json, sys, time
from faster_whisper import WhisperModel, BatchedInferencePipeline, decode_audio
model_dir, audio_path, mode, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
language = None if sys.argv[5] == "auto" else sys.argv[5]
model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
audio = decode_audio(audio_path)
start = time.perf_counter()
if mode == "batched":
    segments, info = BatchedInferencePipeline(model).transcribe(audio, beam_size=5, batch_size=8, language=language)
else:
    segments, info = model.transcribe(audio, beam_size=5, language=language)
segments = [{"start": s.start, "end": s.end, "text": s.text.strip(), "language": info.language} for s in segments]
print(json.dumps({"seconds": time.perf_counter() - start, "segments": segments}))
"""


def words_key(text):
    return " ".join(re.sub(r"[^\w']+", " ", text.lower()).split())


def longest_repeat(segments):
    longest, run, previous = 0, 0, None
    for segment in segments:
        key = words_key(segment["text"])
        run = run + 1 if key == previous else 1
        longest = max(longest, run)
        previous = key
    return longest


def languages_in_order(segments):
    order = []
    for segment in segments:
        language = segment.get("language") or "?"
        if not order or order[-1] != language:
            order.append(language)
    return ">".join(order)


def score(minutes, reference, text, work):
    hypothesis = os.path.join(work, "hypothesis.txt")
    with open(hypothesis, "w") as f:
        f.write(text)
    out = subprocess.run([minutes, "wer", reference, hypothesis, "--json"],
                         capture_output=True, text=True, check=True)
    counts = json.loads(out.stdout)
    words = max(counts["reference_words"], 1)
    kept = (words - counts["deletions"] - counts["substitutions"]) / words
    return counts["wer"], kept


def run_minutes(minutes, model, audio, threads, extra):
    command = [minutes, "transcribe", audio, "--model", model, "--threads", str(threads),
               "--format", "json", "--timings",
               # Recognition alone, as faster-whisper runs it: diarization would add its
               # time and the word alignment it needs for splitting lines.
               "--speakers", "off"] + extra
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"minutes failed on {audio}:\n{out.stderr}")
    timings = json.loads(out.stderr.strip().splitlines()[-1])
    transcript = json.loads(out.stdout)
    return transcript["segments"], timings["transcribe_seconds"], time.perf_counter() - start


def run_faster_whisper(python, script, model_dir, audio, mode, threads, language):
    out = subprocess.run([python, script, model_dir, audio, mode, str(threads), language],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"faster-whisper failed on {audio}:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["segments"], result["seconds"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", required=True)
    parser.add_argument("--python", required=True, help="python of the faster-whisper venv")
    parser.add_argument("--clips", required=True, help="JSON list of clips")
    parser.add_argument("--models", required=True, help="JSON {name: folder}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--extra", default="", help="more flags for minutes transcribe")
    args = parser.parse_args()
    clips = json.loads(args.clips)
    models = json.loads(args.models)
    work = tempfile.mkdtemp(prefix="eval-asr-")
    script = os.path.join(work, "fw_run.py")
    with open(script, "w") as f:
        f.write(FASTER_WHISPER_RUN)

    rows = []
    header = (f"{'clip':<13} {'model':<8} {'pipeline':<14} {'WER':>7} {'kept':>6} "
              f"{'repeat':>6} {'segs':>5} {'secs':>6}  languages")
    print(header)
    print("-" * len(header))
    for clip in clips:
        for model in clip["models"]:
            folder = models[model]
            language = clip.get("language", "auto")
            runs = {}
            segments, seconds, _ = run_minutes(args.minutes, folder, clip["audio"], args.threads,
                                               args.extra.split())
            runs["minutes"] = (segments, seconds)
            for mode in ("sequential", "batched"):
                runs[f"fw-{mode}"] = run_faster_whisper(args.python, script, folder, clip["audio"],
                                                        mode, args.threads, language)
            for pipeline, (segments, seconds) in runs.items():
                text = " ".join(s["text"] for s in segments)
                row = {"clip": clip["name"], "model": model, "pipeline": pipeline,
                       "seconds": seconds, "segments": len(segments),
                       "longest_repeat": longest_repeat(segments),
                       "languages": languages_in_order(segments), "text": text}
                if clip.get("reference"):
                    row["wer"], row["kept"] = score(args.minutes, clip["reference"], text, work)
                rows.append(row)
                wer = f"{row['wer'] * 100:6.2f}%" if "wer" in row else "      -"
                kept = f"{row['kept'] * 100:5.1f}%" if "kept" in row else "     -"
                print(f"{clip['name']:<13} {model:<8} {pipeline:<14} {wer} {kept} "
                      f"{row['longest_repeat']:>6} {row['segments']:>5} {seconds:>6.2f}  "
                      f"{row['languages']}", flush=True)
    print()
    verdicts = []
    for clip in clips:
        for model in clip["models"]:
            by = {r["pipeline"]: r for r in rows if r["clip"] == clip["name"] and r["model"] == model}
            ours = by["minutes"]
            if ours["longest_repeat"] > 3:
                verdicts.append(f"{clip['name']}/{model}: a text repeats {ours['longest_repeat']} segments in a row")
            if "wer" in ours and ours["wer"] > by["fw-sequential"]["wer"] + 1e-9:
                verdicts.append(f"{clip['name']}/{model}: WER {ours['wer'] * 100:.2f}% is worse than "
                                f"faster-whisper sequential's {by['fw-sequential']['wer'] * 100:.2f}%")
            if clip.get("within_batched") and "wer" in ours and \
                    ours["wer"] > by["fw-batched"]["wer"] + 0.02 + 1e-9:
                verdicts.append(f"{clip['name']}/{model}: WER {ours['wer'] * 100:.2f}% is more than 2 points "
                                f"over faster-whisper batched's {by['fw-batched']['wer'] * 100:.2f}%")
    if verdicts:
        print("targets not met:")
        for verdict in verdicts:
            print(f"  {verdict}")
    else:
        print("targets met: no WER worse than faster-whisper sequential's, no text repeated more "
              "than 3 segments in a row, the real call within 2 points of faster-whisper batched")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
