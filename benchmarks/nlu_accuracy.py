"""NLU benchmark: held-out intent accuracy / macro F1 (`rasa test nlu`) and /model/parse latency p50/p95.

    .venv/bin/python benchmarks/nlu_accuracy.py [--no-latency] [--port N]

Held-out sets: nlu/tests/test_nlu.yml (every 5th example of nlu/corpus/, never trained on) and
nlu/tests/test_sample_requests.yml (work_orders/seed/sample_requests.yaml, written by another author).
The model is the cached one for the current nlu/ inputs (trained first if missing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hotline.services import rasa  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-latency", action="store_true", help="skip the /model/parse latency run")
    ap.add_argument("--port", type=int, default=0, help="port for the temporary Rasa server (default: free)")
    ap.add_argument("--rounds", type=int, default=3, help="passes over the held-out texts for latency")
    args = ap.parse_args()

    model = rasa.ensure_model()
    print(f"model: {model}")
    train = Counter(i for _, i, _ in rasa.read_nlu_examples(rasa.NLU_DIR / "data" / "nlu.yml"))
    sets = [rasa.TEST_NLU]
    samples = rasa.NLU_DIR / "tests" / "test_sample_requests.yml"
    if samples.exists():
        sets.append(samples)
    print(f"training examples: {sum(train.values())} over {len(train)} intents "
          f"(min {min(train.values())}, max {max(train.values())} per intent)")
    texts: list[str] = []
    for test_file in sets:
        examples = rasa.read_nlu_examples(test_file)
        texts += [t for t, _, _ in examples]
        started = time.monotonic()
        result = rasa.evaluate_nlu(model, test_file)
        print(f"\n{test_file.relative_to(rasa.REPO_ROOT)}: {result['examples']} examples "
              f"({time.monotonic() - started:.0f}s)")
        print(f"  intent accuracy  {result['accuracy']:.3f}")
        print(f"  intent macro F1  {result['macro_f1']:.3f}")
        worst = sorted(result["per_intent"].items(), key=lambda kv: kv[1]["f1-score"])[:6]
        print("  weakest intents  " + ", ".join(f"{k} {v['f1-score']:.2f}" for k, v in worst))

    if args.no_latency:
        return 0
    server = rasa.start_server(port=args.port or rasa.free_port(), model=model, endpoints=None)
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            client.post("/model/parse", json={"text": "预热"})  # first request builds the graph
            latencies = []
            for _ in range(args.rounds):
                for text in texts:
                    t0 = time.perf_counter()
                    r = client.post("/model/parse", json={"text": text})
                    latencies.append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
        print(f"\n/model/parse latency over {len(latencies)} requests: p50 {pct(latencies, 0.5):.1f} ms, "
              f"p95 {pct(latencies, 0.95):.1f} ms, mean {statistics.fmean(latencies):.1f} ms")
    finally:
        rasa.stop_server()
    return 0


if __name__ == "__main__":
    sys.exit(main())
