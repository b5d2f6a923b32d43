"""The text report of ``benchmarks.speed``: the ingest and answer lines, then one table per index size.

>>> mb(512), mb(2048), ms({"p50_ms": 12.34, "p95_ms": 40.0})
('512 MB', '2.0 GB', '12.3 / 40.0 ms')
"""

from __future__ import annotations


def mb(value: float) -> str:
    return f"{value / 1024:.1f} GB" if value >= 1024 else f"{value:.0f} MB"


def ms(figures: dict) -> str:
    return f"{figures['p50_ms']:.1f} / {figures['p95_ms']:.1f} ms"


def _loads(values: list) -> str:
    return f"{min(values):.1f}–{max(values):.1f}" if values else "?"


def _rows(r: dict) -> list[tuple[str, str]]:
    b, s, rec = r["build"], r["searches"], r["recall"]
    rows = [("papers / chunks", f"{r['papers']:,} / {r['chunks']:,} ({r['chunks'] / max(r['papers'], 1):.2f} per paper)"),
            ("index on disk (keyword index included)", mb(r["disk_mb"])),
            ("build: Store.write time (papers/s; load during)",
             f"{b['write_s']:,.0f} s ({b['papers'] / max(b['write_s'], 1e-9):,.0f}/s; load {_loads(b['loads'])})"),
            ("app start: opened / first search answered", f"{r['open_s']:.1f} / {r['first_search_s']:.1f} s"),
            ("app RSS after start / after 1,000 searches (peak)",
             f"{mb(r['rss_start']['VmRSS'])} / {mb(r['rss_after']['VmRSS'])} ({mb(r['rss_after']['VmHWM'])})"),
            ("keyword index: RSS to open / its mapped pages resident / on disk",
             f"{mb(r['keyword_load_mb'])} / {mb(r['rss_after'].get('mapped', 0))} / {mb(r['keyword_disk_mb'])}"),
            (f"hybrid k=5 p50 / p95, no filter ({s['none']['n']} searches)", ms(s["none"]))]
    for name, text in (("year", "year ≥ 2023"), ("category", "category cs.CL")):
        if name in s:
            rows.append((f"… {text} ({s[name]['passing']:,} papers pass)", ms(s[name])))
    widths = [k for k in rec if k.startswith("k")]
    rows.append((f"HNSW recall@10 vs exact, {rec['queries']} queries, search width (ef) "
                 + " / ".join(str(max(int(k[1:]), 100)) for k in widths),
                 " / ".join(f"{rec[k]['recall_at_10']:.4f} ({rec[k]['ms_per_query']:.1f} ms)" for k in widths)))
    return rows


def tables(result: dict, seconds: float) -> str:
    i = result["ingest"]
    lines = [f"ingest: ours {i['ours_pps']:.1f} papers/s ({i['chunks_ours']} chunks), naive {i['naive_pps']:.1f} "
             f"papers/s: {i['ratio']:.2f}x; dense nDCG@10 ours {i['ndcg_ours']:.4f}, naive {i['ndcg_naive']:.4f} "
             f"(load {_loads(i['load'])})",
             f"answers: {result['prompt_tokens']:.0f} prompt tokens, first token after {result['ttft_s']:.2f} s", ""]
    sizes = list(result["retrieval"])
    lines += ["| | " + " | ".join(sizes) + " |", "| --- |" + " --- |" * len(sizes)]
    columns = [_rows(result["retrieval"][size]) for size in sizes]
    for n, (name, _) in enumerate(columns[0]):
        lines.append(f"| {name} | " + " | ".join(col[n][1] for col in columns) + " |")
    for size, server in result.get("server", {}).items():
        s = server["searches"]
        lines += ["", f"through `chroma run` at {size}: first search {server['first_search_s']:.1f} s after the server "
                      f"started; hybrid p50/p95 {ms(s['none'])}"
                  + "".join(f", {name} {ms(s[name])}" for name in ("year", "category") if name in s)
                  + f"; server RSS {mb(server['server_rss']['VmRSS'])}, client RSS {mb(server['client_rss']['VmRSS'])}"]
    lines += ["", "peak RSS: " + ", ".join(f"{k} {mb(v)}" for k, v in result["rss_mb"].items()),
              f"load average {result['load']:.1f} at the end; {seconds:.0f} s in all"]
    return "\n".join(lines)
