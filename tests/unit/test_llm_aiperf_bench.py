"""benchmarks/llm_aiperf.py without AIPerf: its reading of AIPerf's export (on a small export we
wrote in the shape of AIPerf 0.13.0's), its comparison, and the word-level tokenizer it gives AIPerf."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, load_benchmark

FIXTURE = ROOT / "tests" / "fixtures" / "aiperf"


bench = load_benchmark("llm_aiperf")


def test_the_export_gives_our_four_figures_and_the_profiling_token_counts():
    got = bench.parse_aiperf_export(FIXTURE)
    assert (got["ttft_ms"], got["itl_ms"], got["output_tokens_per_s"], got["requests_per_s"]) == (52.5, 10.1, 80.0, 2.5)
    assert got["ttft_p50_ms"] == 52.0 and got["request_count"] == 3 and got["errors"] == 0
    assert got["aiperf_version"] == "0.13.0" and got["http_ms"] == {"connecting": 0.5, "waiting": 51.0}
    assert got["output_tokens_per_request"] == [32, 32, 31]  # the warm-up record is not counted
    assert got["request_starts"][0] == ("req-1", 1_800_000_001_000_000_000, 52.0)


def test_aiperfs_ttft_is_split_at_the_servers_own_read_and_first_write(tmp_path):
    t = tmp_path / "timings.jsonl"
    # the server read the request 2 ms after AIPerf's start and wrote its first token 50 ms later;
    # AIPerf stamped it 52 + 3 = 55 ms after its start, so 3 ms after the server's write
    start = 1_800_000_001_000_000_000
    t.write_text(json.dumps({"id": "c", "request_id": "req-1", "read_ns": 5_000_000, "read_wall_ns": start + 2_000_000,
                             "headers_ns": 5_100_000, "token_ns": [55_000_000, 65_000_000], "done_ns": 66_000_000}) + "\n")
    split = bench.ttft_split(t, [("req-1", start, 55.0), ("req-unseen", start, 60.0)])
    assert split == {"matched": 1, "to_server_read_ms": 2.0, "server_ms": 50.0, "after_server_write_ms": 3.0}
    assert bench.ttft_split(t, []) == {"matched": 0}


@pytest.mark.parametrize("change,words", [
    (lambda s: s.pop("inter_token_latency"), "no inter_token_latency.avg"),
    (lambda s: s["time_to_first_token"].update(unit="us"), "in 'us', expected 'ms'"),
    (lambda s: s["request_throughput"].update(avg=None), "no request_throughput.avg"),
])
def test_a_changed_export_stops_the_comparison(tmp_path, change, words):
    summary = json.loads((FIXTURE / "profile_export_aiperf.json").read_text())
    change(summary)
    (tmp_path / "profile_export_aiperf.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(".", r"\.")):
        bench.parse_aiperf_export(tmp_path)
    with pytest.raises(ValueError, match="no profile_export_aiperf.json"):
        bench.parse_aiperf_export(tmp_path / "missing")


def test_compare_is_ours_over_aiperfs_within_five_percent():
    out = bench.compare({"ttft_ms": 52.0, "itl_ms": 10.0, "output_tokens_per_s": 70.0, "requests_per_s": None},
                        {"ttft_ms": 50.0, "itl_ms": 10.0, "output_tokens_per_s": 80.0, "requests_per_s": 2.0})
    assert out["ttft_ms"] == {"ours": 52.0, "aiperf": 50.0, "ratio": 1.04, "within": True}
    assert out["output_tokens_per_s"]["ratio"] == 0.875 and not out["output_tokens_per_s"]["within"]
    assert out["requests_per_s"]["ratio"] is None and not out["requests_per_s"]["within"]


def test_server_view_reads_the_stand_ins_own_times_within_a_run(tmp_path):
    t = tmp_path / "timings.jsonl"
    rec = lambda read, first, n: {"id": "x", "read_ns": read, "headers_ns": read, "done_ns": first + n * 10_000_000,  # noqa: E731
                                  "token_ns": [first + i * 10_000_000 for i in range(n)]}
    t.write_text("\n".join(json.dumps(r) for r in (rec(0, 50_000_000, 4), rec(1_000_000_000, 1_060_000_000, 4),
                                                   rec(9_000_000_000, 9_050_000_000, 2))) + "\n")
    view = bench.server_view(t, (0, 2_000_000_000))
    assert view["server_requests"] == 2 and view["server_tokens_per_request"] == [4] and view["server_tokens"] == 8
    assert view["server_ttft_ms"] == 55.0 and view["server_itl_ms"] == 10.0
    assert bench.server_view(tmp_path / "none.jsonl", (0, 1)) == {"server_requests": 0}


def test_the_tokenizer_is_word_level_over_everything_the_stand_in_says(tmp_path):
    from nimwarden.lab import nimstub

    words = bench.stand_in_words()
    assert set(nimstub.VOCAB) <= set(words) and set(bench.PROMPT.split()) <= set(words)
    assert set(nimstub.answer_tokens("stand-in answer (no backend)", None, {})) <= set(words)
    snap = bench.write_tokenizer_cache(tmp_path, words)
    tok = json.loads((snap / "tokenizer.json").read_text())
    assert tok["model"]["type"] == "WordLevel" and tok["pre_tokenizer"] == {"type": "WhitespaceSplit"}
    assert tok["model"]["vocab"][bench.UNK] == 0 and len(tok["model"]["vocab"]) == len(words) + 1
    assert json.loads((snap / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    # the layout an offline hub cache has: HF_HOME/hub/models--owner--name/{refs/main, snapshots/<ref>/}
    entry = tmp_path / "hub" / "models--nimwarden--stand-in-words"
    assert (entry / "refs" / "main").read_text() == snap.name and snap.parent == entry / "snapshots"


def test_the_tokenizer_counts_one_token_per_word_where_the_tokenizers_library_is(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    snap = bench.write_tokenizer_cache(tmp_path, bench.stand_in_words())
    tok = tokenizers.Tokenizer.from_file(str(snap / "tokenizer.json"))
    text = "the stand-in streams (no backend) zzz-unknown  "
    assert len(tok.encode(text, add_special_tokens=False).ids) == len(text.split()) == 6


def test_setup_needs_no_aiperf_to_name_its_command():
    cmd = bench.aiperf_command(Path("/v/bin/aiperf"), "http://127.0.0.1:1", "m", 4, 160, 32, Path("p.jsonl"), Path("a"), 4)
    joined = " ".join(cmd)
    assert "--streaming" in cmd and "--endpoint-type chat" in joined and "--concurrency 4" in joined
    assert "--request-count 160" in joined and "--output-tokens-mean 32" in joined and f"--tokenizer {bench.TOKENIZER_REPO}" in joined
    env = bench.aiperf_env(Path("/h"))
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1" and env["HF_HOME"] == "/h"
