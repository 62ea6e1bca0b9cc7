"""The end-to-end benchmark's figures from several runs: the latency figures the median of its paced runs, with the
p99's spread beside them; the kept-open capacity the median of its capacity runs."""

from __future__ import annotations

from bench.bench_e2e import _median_run, _paced_figures


def _summary(approved: float, p50: float, p99: float, p999: float) -> dict[str, float]:
    return {"approved_tps": approved, "p50_ms": p50, "p99_ms": p99, "p999_ms": p999}


def test_several_paced_runs_give_each_percentiles_median_and_the_p99s_least_and_greatest() -> None:
    runs = [_summary(500, 7, 16, 20), _summary(499, 9, 39, 45), _summary(500, 8, 18, 26)]
    assert _paced_figures("keep_alive_paced_", 500, runs) == {
        "keep_alive_paced_rate_per_s": 500.0,
        "keep_alive_paced_approved_per_s": 500.0,
        "keep_alive_paced_p50_ms": 8.0,
        "keep_alive_paced_p99_ms": 18.0,  # not the 39 ms of one unlucky run
        "keep_alive_paced_p999_ms": 26.0,
        "keep_alive_paced_p99_ms_min": 16.0,
        "keep_alive_paced_p99_ms_max": 39.0,
    }


def test_one_paced_run_is_its_own_figures_with_no_spread() -> None:
    assert _paced_figures("paced_", 650, [_summary(650, 6.4, 14.2, 17.6)]) == {
        "paced_rate_per_s": 650.0,
        "paced_approved_per_s": 650.0,
        "paced_p50_ms": 6.4,
        "paced_p99_ms": 14.2,
        "paced_p999_ms": 17.6,
    }


def test_several_capacity_runs_give_the_median_rate_and_the_cpu_of_the_run_with_the_median_total() -> None:
    runs = [
        ({"approved_tps": 1900.0, "p99_ms": 30.0}, {"frontend": 330.0, "ledger": 170.0}),
        ({"approved_tps": 1500.0, "p99_ms": 40.0}, {"frontend": 450.0, "ledger": 230.0}),  # a busy neighbour
        ({"approved_tps": 2000.0, "p99_ms": 25.0}, {"frontend": 310.0, "ledger": 160.0}),
    ]
    summary, cpu = _median_run(runs)
    assert summary["approved_tps"] == 1900.0
    assert cpu == {"frontend": 330.0, "ledger": 170.0}  # whole: its processes add up to the median total (500)


def test_one_capacity_run_is_its_own_figures() -> None:
    run = ({"approved_tps": 1700.0}, {"frontend": 400.0})
    assert _median_run([run]) == run
