"""The measurements of scripts/bench-service (which sets up the services and the
environment). Standard library only: the load generator is asyncio over raw HTTP/1.1
keep-alive connections."""

import argparse
import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid


def start(binary, env_extra=None, ready=r"listening on http://(\S+)|health and metrics on (http://\S+)"):
    env = dict(os.environ, **(env_extra or {}))
    process = subprocess.Popen([binary], env=env, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        match = re.search(ready, line)
        if match:
            address = match.group(1) or match.group(2)
            # Keep draining stderr so the process never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
            return process, address.replace("http://", "")
    raise SystemExit(f"{binary} did not start")


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


# The API token every request sends (made in main, after the API is up).
TOKEN = {"value": ""}


def auth_header():
    return f"Authorization: Bearer {TOKEN['value']}"


def upload_file(address, path, title="bench"):
    result = subprocess.run(
        ["curl", "-sS", "-H", auth_header(), "-F", f"file=@{path}", "-F", f"title={title}",
         f"http://{address}/api/v1/jobs"],
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout)


def get_json(address, path):
    request = urllib.request.Request(f"http://{address}{path}", headers={"Authorization": f"Bearer {TOKEN['value']}"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def big_upload(api, address, work, size):
    source = os.path.join(work, "big.wav")
    header = b"RIFF" + (size - 8).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    header += (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little")
    header += (32000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    header += b"data" + (size - 44).to_bytes(4, "little")
    digest = hashlib.sha256(header)
    with open(source, "wb") as out, open("/dev/urandom", "rb") as noise:
        out.write(header)
        left = size - len(header)
        while left:
            chunk = noise.read(min(left, 8 << 20))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    before = rss_kib(api.pid, "VmRSS")
    started = time.monotonic()
    job = upload_file(address, source)
    took = time.monotonic() - started
    peak = rss_kib(api.pid, "VmHWM")
    stored = os.path.join(work, "store", "jobs", job["id"], "upload")
    stored_digest = hashlib.sha256()
    with open(stored, "rb") as data:
        for chunk in iter(lambda: data.read(8 << 20), b""):
            stored_digest.update(chunk)
    os.remove(source)
    os.remove(stored)
    growth = (peak - before) / 1024
    print(f"2 GiB upload: {size / took / 2**20:.0f} MiB/s ({took:.1f} s); API RSS before {before / 1024:.1f} MiB, "
          f"peak {peak / 1024:.1f} MiB, growth {growth:.1f} MiB (target < 64); "
          f"stored SHA-256 {'equals' if stored_digest.digest() == digest.digest() else 'DIFFERS FROM'} the source")
    return job["id"]


async def latency(address, path, connections, per_connection):
    host, port = address.rsplit(":", 1)
    request = f"GET {path} HTTP/1.1\r\nHost: {address}\r\n{auth_header()}\r\n\r\n".encode()
    samples = []

    async def client():
        reader, writer = await asyncio.open_connection(host, int(port))
        for _ in range(per_connection):
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
            await reader.readexactly(length)
            samples.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(head.decode(errors="replace"))
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    wall = time.perf_counter() - started
    samples.sort()
    p50 = samples[len(samples) // 2] * 1000
    p99 = samples[int(len(samples) * 0.99)] * 1000
    label = re.sub(r"[0-9a-f-]{36}", "{id}", path)
    print(f"GET {label} at {connections} connections: {len(samples)} requests, "
          f"{len(samples) / wall:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms")


def throughput(bin_dir, address, fixture, workers, jobs):
    cores = os.cpu_count() or 2
    env = {
        "MINUTES_QUEUE": os.environ["MINUTES_QUEUE"],
        "MINUTES_THREADS": str(max(1, cores // workers)),
    }
    processes = [start(os.path.join(bin_dir, "minutes-worker"), env)[0] for _ in range(workers)]
    started = time.monotonic()
    ids = [upload_file(address, fixture)["id"] for _ in range(jobs)]
    while True:
        states = [get_json(address, f"/api/v1/jobs/{i}")["state"] for i in ids]
        if all(s in ("done", "failed", "cancelled") for s in states):
            break
        time.sleep(0.2)
    took = time.monotonic() - started
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()
    done = states.count("done")
    print(f"{workers} worker(s): {done}/{jobs} jobs done in {took:.1f} s = {jobs / took * 60:.1f} jobs/min")
    return jobs / took


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--fixture", required=True)
    parser.add_argument("--jobs", type=int, default=16)
    args = parser.parse_args()
    os.environ["MINUTES_QUEUE"] = f"minutes-bench:{uuid.uuid4().hex}"
    api, address = start(os.path.join(args.bin_dir, "minutes-api"))
    print(f"machine: {os.cpu_count()} cores; API at {address}")
    # A user and a token, as an operator would make them (the API has migrated by now).
    cli = os.path.join(args.bin_dir, "minutes")
    password = "bench passphrase " + uuid.uuid4().hex
    subprocess.run([cli, "users", "add", "bench@example.com"], input=password + "\n", text=True, check=True,
                   capture_output=True)
    made = subprocess.run([cli, "tokens", "create", "bench", "--email", "bench@example.com",
                           "--api", f"http://{address}"], input=password + "\n", text=True, check=True,
                          capture_output=True)
    TOKEN["value"] = made.stdout.strip()
    job = big_upload(api, address, args.work, 2 << 30)
    # The reference in the same run: a route with no database and no credentials.
    asyncio.run(latency(address, "/healthz", 64, 200))
    asyncio.run(latency(address, f"/api/v1/jobs/{job}", 64, 200))
    # The 2 GiB job is not a recording worth transcribing: remove it before the workers run.
    urllib.request.urlopen(urllib.request.Request(f"http://{address}/api/v1/jobs/{job}", method="DELETE",
                                                  headers={"Authorization": f"Bearer {TOKEN['value']}"}))
    rates = {}
    for workers in (1, 2, 4):
        rates[workers] = throughput(args.bin_dir, address, args.fixture, workers, args.jobs)
    print("scaling: " + ", ".join(f"{w} -> {rate / rates[1]:.2f}x" for w, rate in rates.items()))
    api.terminate()
    api.wait()


if __name__ == "__main__":
    sys.exit(main())
