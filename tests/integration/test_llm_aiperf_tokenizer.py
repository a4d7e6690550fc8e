"""The tokenizer benchmarks/llm_aiperf.py gives AIPerf counts what the NIM stand-in streams: one
token per SSE event. Loaded the way AIPerf loads it (its own loader, offline, from the hub-cache
layout), so it needs the benchmark's AIPerf virtualenv and skips without it."""

from __future__ import annotations

import json
import subprocess

import pytest

from nimwarden.families.performance import llm
from nimwarden.lab import nimstub
from tests.conftest import load_benchmark

bench = load_benchmark("llm_aiperf")
PY = bench.AIPERF_VENV / "bin" / "python"

COUNT = """
import json, sys
from aiperf.common.tokenizer import Tokenizer
tok = Tokenizer.from_pretrained(sys.argv[1])
print(json.dumps([len(tok.encode(t)) for t in json.load(sys.stdin)]))
"""


@pytest.mark.skipif(not PY.exists(), reason=f"no AIPerf virtualenv at {bench.AIPERF_VENV} "
                    "(python benchmarks/llm_aiperf.py --setup-only makes it)")
def test_aiperf_counts_as_many_tokens_as_the_stand_in_streamed(tmp_path):
    import requests

    bench.write_tokenizer_cache(tmp_path / "hf", bench.stand_in_words())
    info = nimstub.start("tok", tmp_path, host="127.0.0.1", output_tokens=300)
    try:
        texts, events = [], []
        for n in (1, 7, 64, 300):
            r = requests.post(info["url"] + "/v1/chat/completions", timeout=10, stream=True,
                              json={"messages": [], "stream": True, "max_completion_tokens": n})
            chunks = [json.loads(ln[6:])["choices"][0]["delta"]["content"] for ln in r.iter_lines() if ln.startswith(b"data: {")]
            texts.append("".join(chunks))
            events.append(len(chunks))
        ours = llm.stream_once(llm.StreamEndpoint(info["url"], nimstub.MODEL, timeout_s=10, max_tokens=20))
    finally:
        nimstub.stop(info)
    texts.append("stand-in answer (no backend) ")  # the stand-in's short answer, unpaced
    events.append(4)
    got = subprocess.run([str(PY), "-c", COUNT, bench.TOKENIZER_REPO], input=json.dumps(texts), capture_output=True,
                         text=True, env=bench.aiperf_env(tmp_path / "hf"), timeout=120)
    assert got.returncode == 0, got.stderr[-2000:]
    assert json.loads(got.stdout) == events == [1, 7, 64, 300, 4]
    assert ours.tokens == 20  # PERF-LLM-001 counts events: the same unit
