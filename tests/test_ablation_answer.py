"""A page that compares several configurations opens with one answer: which option uses the
neighbour best, by how much, head to head with the runner-up, and what the saving is made of."""

from __future__ import annotations

import json

import pandas as pd

from acbench.analysis.answer import ablation_answer, option_pairs, seed_groups
from acbench.analysis.leaderboard import leaderboard_markdown
from acbench.analysis.synthetic import synthetic_rows
from acbench.schema import variant
from acbench.store import load_rows


def _rows(**kw) -> pd.DataFrame:
    kw.setdefault("controls", True)
    kw.setdefault("chains", (4,))
    kw.setdefault("seeds", (0, 1, 2))
    kw.setdefault("n_images", 24)
    return synthetic_rows(**kw)


def test_the_option_with_the_larger_content_gain_wins():
    # film keeps the whole neighbour saving, conv1x1 15 % less of it (synthetic_rows' rule)
    rows = _rows(mixers=("film", "conv1x1"), saving={"y": 0.08, "z": 0.1}, shuffled_keep=0.0, noise=0.01)
    groups = seed_groups(rows)
    assert len(groups) == 2
    text = ablation_answer(rows, groups, bootstrap=200)
    first = text.splitlines()[0]
    assert first.startswith("**mixer film uses the neighbour best: its content saves ")
    assert "next mixer conv1x1" in first and "Head to head, mixer film's coded chain costs -" in first
    main = text.split("**Option against option**")[0]
    table = [ln for ln in main.splitlines() if ln.startswith("| mixer")]
    assert [ln.split("|")[1].strip() for ln in table] == ["mixer film", "mixer conv1x1"]  # best first
    assert "**Option against option**" in text  # film and conv1x1 head to head
    md = leaderboard_markdown(rows, "cmd", "synthetic", bootstrap=100)
    assert md.index("## Answer\n") < md.index("## Each configuration") < md.index("### mshp · isomap · film")


def test_options_are_compared_pairwise_where_one_option_differs():
    # known ranks: film keeps the whole saving, conv1x1 15 % less; isomap all of it, random 25 % less
    rows = _rows(
        mixers=("film", "conv1x1"), orderings=("isomap", "random"), saving={"y": 0.1, "z": 0.1}, noise=0.005
    )
    groups = seed_groups(rows)
    table = option_pairs(rows, groups, bootstrap=200)
    lines = [[c.strip() for c in ln.split("|")[1:-1]] for ln in table.splitlines() if ln.startswith("| ")][1:]
    better = {"mixer film": 0, "mixer conv1x1": 1, "ordering isomap": 0, "ordering random": 1}
    assert len(lines) == 4  # 2 mixer pairs (one per ordering), 2 ordering pairs (one per mixer)
    assert [ln[0].split()[0] for ln in lines] == ["ordering", "ordering", "mixer", "mixer"]  # grouped
    for option, against, where, figure in lines:
        assert where.split()[0] != option.split()[0]  # the pair shares the other option
        worse = better[option] > better[against]
        assert figure.endswith("*") and figure.startswith("+" if worse else "-"), (option, against, figure)
    assert "**Option against option**" in ablation_answer(rows, groups, bootstrap=100)
    # one option only: no pair table
    rows = _rows(mixers=("film", "conv1x1"), saving={"y": 0.1, "z": 0.1})
    assert option_pairs(rows, seed_groups(rows), bootstrap=50).count("\n| ") == 1  # one pair


def test_no_gain_is_said_as_such():
    kw = {"saving": {"y": 0.0, "z": 0.0}, "noise": 0.02, "budget": {"y": 0.03, "z": 0.03}}
    rows = _rows(mixers=("film", "conv1x1"), capacity={"y": 0.0, "z": 0.0}, **kw)
    text = ablation_answer(rows, seed_groups(rows), bootstrap=200)
    assert text.startswith("**No configuration shows a content gain whose interval excludes 0**")
    assert "it is training budget, not the neighbour." in text
    rows = _rows(mixers=("film", "conv1x1"), capacity={"y": 0.02, "z": 0.02}, **kw)
    assert "it is capacity (extra layers), not the neighbour." in ablation_answer(
        rows, seed_groups(rows), 200
    )


def test_variant_names_departures_from_the_defaults():
    assert variant({"kind": "conditional", "baseline": "frozen", "shared_transforms": False}) == ""
    assert variant({"kind": "conditional", "baseline": "joint", "shared_transforms": True}) == (
        "joint baseline, shared transforms"
    )
    assert variant({"kind": "conditional", "reference": "reconstruction"}) == "reference reconstruction"
    assert variant({"kind": "baseline", "baseline": "joint"}) == ""


def test_rows_written_before_the_variant_column_get_it_from_their_config(tmp_path):
    rows = _rows(seeds=(0,), n_images=4)
    curve = rows.loc[rows["kind"] == "conditional", "curve"].iloc[0]
    d = tmp_path / "abc123def456"
    d.mkdir()
    rows[rows["curve"] == curve].drop(columns=["variant"], errors="ignore").to_csv(
        d / "rows.csv", index=False
    )
    from acbench.config import SCHEMA

    (d / "config.json").write_text(json.dumps({"schema": SCHEMA, "kind": "conditional", "baseline": "joint"}))
    (d / "done").touch()
    loaded, skipped = load_rows(tmp_path)
    assert not skipped and set(loaded["variant"]) == {"joint baseline"}


def test_contrast_page_puts_datasets_side_by_side(tmp_path):
    from acbench.analysis.leaderboard import write_contrast
    from acbench.store import read_rows_csv

    pos = _rows(dataset="shifted", saving={"y": 0.2, "z": 0.1}, shuffled_keep=0.0, n_images=16)
    real = _rows(dataset="photos", saving={"y": 0.0, "z": 0.0}, noise=0.02, n_images=16)
    for col in ("curve", "anchor_curve", "matched_curve", "control_curve", "run_id"):  # ids differ
        real[col] = real[col].astype(str).where(real[col].astype(str) == "", "p-" + real[col].astype(str))
    md, csv = write_contrast(pd.concat([pos, real], ignore_index=True), tmp_path, "cmd")
    text = md.read_text()
    assert "on **shifted** the best is" in text and "on **photos** the best is" in text
    assert (
        "The same configuration on several datasets: "
        "mshp · film · hyper_analysis,hyper_synthesis · L=4: photos (128 px, isomap)" in text
    )
    lines = [ln for ln in text.splitlines() if ln.startswith("| photos") or ln.startswith("| shifted")]
    shifted = next(ln for ln in lines if ln.startswith("| shifted"))
    assert shifted.split("|")[4].strip().endswith("*")  # the positive control's gain excludes 0
    again = write_contrast(read_rows_csv(csv), tmp_path / "again", "cmd")[0].read_text()
    assert again == text  # rebuilt from its own rows, byte for byte
