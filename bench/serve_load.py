#!/usr/bin/env python3
"""Load client for `lora-pipeline serve` (standard library only): C concurrent clients send N
streaming /v1/completions requests in all, greedy, each for MAX_TOKENS tokens, spread round-robin
over the given models; prints one JSON line: requests/s, output tokens/s, time to first token
(median, p90), per-token latency (median) and how many requests were refused (429).

    python3 bench/serve_load.py URL --concurrency C --requests N --max-tokens T --models m1,m2,...
"""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def one(url, model, prompt, max_tokens):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens,
                       "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}})
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        r.read()
        conn.close()
        return {"status": r.status}
    first = None
    tokens = 0
    buf = b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            if event.startswith(b":"):  # a keep-alive comment
                continue
            data = event[len(b"data: "):]
            if data == b"[DONE]":
                continue
            msg = json.loads(data)
            if msg.get("choices") and msg["choices"][0].get("text") and first is None:
                first = time.perf_counter()
            if msg.get("usage"):
                tokens = msg["usage"]["completion_tokens"]
    end = time.perf_counter()
    conn.close()
    return {"status": 200, "ttft": (first or end) - t0, "total": end - t0, "tokens": tokens}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--requests", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--models", required=True)
    p.add_argument("--prompt", default="Once upon a time, in a small town,")
    a = p.parse_args()
    models = a.models.split(",")
    results = []
    lock = threading.Lock()
    next_index = [0]

    def worker():
        while True:
            with lock:
                i = next_index[0]
                if i >= a.requests:
                    return
                next_index[0] += 1
            res = one(a.url, models[i % len(models)], a.prompt + " " + str(i), a.max_tokens)
            with lock:
                results.append(res)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = [r for r in results if r["status"] == 200]
    ttft = sorted(r["ttft"] for r in ok)
    per_token = [(r["total"] - r["ttft"]) / max(1, r["tokens"] - 1) for r in ok if r["tokens"] > 1]
    print(json.dumps({
        "concurrency": a.concurrency, "requests": a.requests, "models": len(models),
        "max_tokens": a.max_tokens, "completed": len(ok),
        "refused_429": sum(1 for r in results if r["status"] == 429),
        "requests_per_s": round(len(ok) / wall, 3),
        "output_tokens_per_s": round(sum(r["tokens"] for r in ok) / wall, 2),
        "ttft_ms_median": round(1000 * statistics.median(ttft), 1) if ttft else None,
        "ttft_ms_p90": round(1000 * ttft[int(0.9 * (len(ttft) - 1))], 1) if ttft else None,
        "per_token_ms_median": round(1000 * statistics.median(per_token), 2) if per_token else None,
    }))


if __name__ == "__main__":
    main()
