"""The scale-out benchmark's pure parts: requests per replica from vLLM's and Ray's metrics, percentiles."""

from benchmarks.scaleout.cli import percentile, split_by_replica

VLLM_DP = """vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 10.0
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 2.0
vllm:request_success_total{engine="1",finished_reason="length",model_name="m"} 9.0
vllm:request_prompt_tokens_sum{engine="1",model_name="m"} 99.0
"""
RAY = """ray_vllm_request_success_total{Component="core_worker"} 9.0
ray_vllm_request_success_total{Component="core_worker",ReplicaId="a1",engine="0",finished_reason="length"} 4.0
ray_vllm_request_success_total{engine="0",ReplicaId="b2",finished_reason="length",model_name="m"} 5.0
"""


def test_split_counts_finished_requests_per_rank_or_replica():
    assert split_by_replica(VLLM_DP) == {"0": 12, "1": 9}
    assert split_by_replica(RAY) == {"a1": 4, "b2": 5}
    assert split_by_replica("") == {}


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 51.0 and percentile(values, 99) == 99.0 and percentile([3.0], 99) == 3.0
