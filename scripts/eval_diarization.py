"""Diarization error rate of `minutes diarize` on clips with reference RTTM files.

DER from pyannote.metrics, no collar, overlapping speech scored; the speaker count found
against the reference's; and the time diarization took. Called by scripts/eval-diarization.
"""
import argparse
import json
import subprocess
import sys
import time
import warnings

from pyannote.core import Annotation, Segment
from pyannote.metrics.diarization import DiarizationErrorRate

warnings.filterwarnings("ignore", message=".*'uem' was approximated.*")


def read_rttm(path, uri=None):
    annotation = Annotation()
    with open(path) as lines:
        for line in lines:
            fields = line.split()
            if len(fields) < 8 or fields[0] != "SPEAKER":
                continue
            if uri is not None and fields[1] != uri:
                continue
            start, duration = float(fields[3]), float(fields[4])
            annotation[Segment(start, start + duration)] = fields[7]
    return annotation


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", required=True)
    parser.add_argument("--clips", required=True, help="JSON list of {name, audio, rttm}")
    parser.add_argument("--json")
    parser.add_argument("extra", nargs="*", help="more `minutes diarize` flags")
    args = parser.parse_args()
    results = []
    print(f"{'clip':<16} {'speakers':>8} {'found':>5} {'DER':>6} {'miss':>6} {'false':>6} {'conf':>6} {'audio':>7} {'time':>6}")
    for clip in json.loads(args.clips):
        out = subprocess.run(
            [args.minutes, "diarize", clip["audio"], "--timings", *args.extra],
            capture_output=True, text=True,
        )
        if out.returncode != 0:
            print(f"{clip['name']}: minutes diarize failed:\n{out.stderr}", file=sys.stderr)
            sys.exit(1)
        timings = json.loads(out.stderr.strip().splitlines()[-1])
        hypothesis = Annotation()
        for line in out.stdout.splitlines():
            fields = line.split()
            start, duration = float(fields[3]), float(fields[4])
            hypothesis[Segment(start, start + duration)] = fields[7]
        reference = read_rttm(clip["rttm"])
        metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
        detail = metric(reference, hypothesis, detailed=True)
        total = detail["total"] or 1.0
        row = {
            "name": clip["name"],
            "reference_speakers": len(reference.labels()),
            "found_speakers": len(hypothesis.labels()),
            "der": detail["diarization error rate"],
            "missed": detail["missed detection"] / total,
            "false_alarm": detail["false alarm"] / total,
            "confusion": detail["confusion"] / total,
            "audio_seconds": timings["audio_seconds"],
            "diarize_seconds": timings["diarize_seconds"],
        }
        results.append(row)
        print(f"{row['name']:<16} {row['reference_speakers']:>8} {row['found_speakers']:>5} "
              f"{100 * row['der']:>5.1f}% {100 * row['missed']:>5.1f}% {100 * row['false_alarm']:>5.1f}% "
              f"{100 * row['confusion']:>5.1f}% {row['audio_seconds']:>6.1f}s {row['diarize_seconds']:>5.1f}s")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
