"""Results of a training run as JSON and as Markdown tables in RAD's column order.

Each cell is `mean ± std` over seeds. The headline compares RL with IL on the DAA corner
cases (all behaviours pooled): the paper's target is CR(RL) <= CR(IL) / 5 with
DR(RL) <= 1.5 DR(IL).
"""

from __future__ import annotations

import os

from jaxsim.metrics import TABLE_COLUMNS


def condition_table(rows: dict) -> str:
    """rows: policy name -> {"mean", "std", "seeds"} (see agents.eval_learned.aggregate_seeds)."""
    cols = tuple(c for c in TABLE_COLUMNS if all(c in r["mean"] for r in rows.values()))  # older results lack at-fault
    lines = ["| Method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        cells = []
        for c in cols:
            m, s = r["mean"][c], r["std"][c]
            cells.append(
                f"{int(m)}" if c == "Episodes" else (f"{m:.3f} ± {s:.3f}" if len(r["seeds"]) > 1 else f"{m:.3f}")
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def headline(results: dict, split: str = "eval") -> dict | None:
    """CR and DR ratios of IL over RL on the pooled DAA corner cases (or log replay) of
    the held-out suite (split "eval") or the validation suite ("validation_eval")."""
    ev = results.get(split, {})
    cond = "daa-all" if "daa-all" in ev else "log-replay"
    rows = ev.get(cond, {})
    if "IL" not in rows or "RL" not in rows:
        return None
    il, rl = rows["IL"]["mean"], rows["RL"]["mean"]
    cr_ratio = il["CR"] / max(rl["CR"], 1e-9)
    dr_ratio = rl["DR"] / max(il["DR"], 1e-9)
    out = {"condition": cond, "CR_IL": il["CR"], "CR_RL": rl["CR"], "CR_reduction_x": cr_ratio,
           "DR_IL": il["DR"], "DR_RL": rl["DR"], "DR_ratio_RL_over_IL": dr_ratio,
           "target_met": bool(cr_ratio >= 5.0 and rl["DR"] <= 1.5 * il["DR"] + 1e-9)}  # fmt: skip
    if "AtFaultCR" in il and "AtFaultCR" in rl:
        out.update(AtFaultCR_IL=il["AtFaultCR"], AtFaultCR_RL=rl["AtFaultCR"],
                   AtFaultCR_reduction_x=il["AtFaultCR"] / max(rl["AtFaultCR"], 1e-9))  # fmt: skip
    return out


def comparison_markdown(results: dict) -> str:
    seeds = results.get("config", {}).get("seeds", 1)
    parts = []
    for split, title in (("validation_eval", "Validation"), ("eval", "Held-out")):
        for cond, rows in results.get(split, {}).items():
            parts.append(f"### {title}, {cond} ({seeds} seed(s), mean ± std)\n\n" + condition_table(rows))
        h = headline(results, split)
        if h:
            parts.append(_headline_line(title, h))
    return "\n\n".join(parts)


def _headline_line(title: str, h: dict) -> str:
    return (
        f"**{title}, {h['condition']}:** CR IL {h['CR_IL']:.3f} -> RL {h['CR_RL']:.3f} "
        f"({h['CR_reduction_x']:.1f}x lower; paper: 5x), DR IL {h['DR_IL']:.3f} -> RL {h['DR_RL']:.3f} "
        f"(RL/IL {h['DR_ratio_RL_over_IL']:.2f}; target <= 1.5). Target met: {h['target_met']}."
        + (
            f" At-fault CR IL {h['AtFaultCR_IL']:.3f} -> RL {h['AtFaultCR_RL']:.3f} "
            f"({h['AtFaultCR_reduction_x']:.1f}x lower)."
            if "AtFaultCR_IL" in h
            else ""
        )
    )


def write_results(results: dict, out: str) -> None:
    """results.json (strict JSON: NaN/inf as null) and results.md, each written atomically."""
    from jaxsim.io_utils import write_json, write_text

    results = dict(results, headline=headline(results))
    if "validation_eval" in results:
        results["validation_headline"] = headline(results, "validation_eval")
    write_json(os.path.join(out, "results.json"), results)
    write_text(os.path.join(out, "results.md"), comparison_markdown(results) + "\n")
