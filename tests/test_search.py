"""Optuna searches: space parsing, bad input, trials through the runner, workers, storages."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "search_tiny.toml"
MIXERS = ("conv1x1", "film")
# a PostgreSQL server for the storage tests: .ci/run starts one with .ci/postgres.sh and exports
# its URL; without it those tests skip (the test suite installs and starts nothing)
PG_URL = os.environ.get("ACBENCH_PG_URL", "")


def tiny_configs():
    """The two configs of the tiny search space (one per mixer)."""
    from acbench.search import configure, load_search

    spec = load_search(TINY)
    return [
        configure(spec.space, spec.base, lambda p, m=m: m if p.key == "mixer" else p.examples()[0])
        for m in MIXERS
    ]


@pytest.fixture(scope="session")
def warm(tmp_path_factory):
    """A run store holding every run of the tiny space (trained once per test session)."""
    from acbench.executors import LocalExecutor
    from acbench.runner import plan

    root = tmp_path_factory.mktemp("warm")
    outs = LocalExecutor().run(plan(tiny_configs(), False), root)
    assert all(o.status == "done" for o in outs), [o.reason for o in outs]
    return root


@pytest.fixture
def store(warm, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(warm, root)
    return root


def _spec(tmp_path: Path, body: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


BASE = """
preset = "tiny"
lmbdas = [0.0067]
[set]
ordering = "random"
features = "pixels"
[objective]
metric = "rd_loss"
"""


# --------------------------------------------------------------------------------------------
# The file: space, objective, errors


def test_space_parses_and_configures_nested_params():
    import optuna

    from acbench.config import preset
    from acbench.search import configure, parse_space

    space = parse_space(
        {
            "chain": {"int": [2, 6]},
            "train.lr": {"float": [1e-4, 1e-2], "log": True},
            "sites": {"choices": [["hyper_analysis", "hyper_synthesis"], ["latent_prior"]]},
            "ordering": {
                "choices": ["random", "isomap"],
                "params": {"isomap": {"n_neighbors": {"int": [5, 30]}}},
            },
            "mixer": ["film", {"name": "deep_conv", "depth": 2}],
        }
    )
    assert space.names() == ["ordering", "ordering:isomap.n_neighbors", "mixer", "chain", "train.lr", "sites"]
    trial = optuna.trial.FixedTrial(
        {
            "ordering": "isomap",
            "ordering:isomap.n_neighbors": 7,
            "mixer": '{"depth": 2, "name": "deep_conv"}',
            "chain": 3,
            "train.lr": 3e-4,
            "sites": "latent_prior",
        }
    )
    cfg = configure(space, preset("tiny"), lambda p: p.suggest(trial))
    assert cfg.ordering.name == "isomap" and cfg.ordering.params == {"n_neighbors": 7}
    assert cfg.mixer.name == "deep_conv" and cfg.mixer.params == {"depth": 2}
    assert (cfg.chain, cfg.train.lr, cfg.sites) == (3, 3e-4, ("latent_prior",))
    assert cfg.codec.params == preset("tiny").codec.params  # the preset's sizes stay


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("mixer = {choices = []}", "space.mixer: empty choice list"),
        ("chain = {int = [6, 2]}", r"space.chain: inverted range \[6, 2\]"),
        ('"train.lr" = {float = [0.0, 1e-3], log = true}', "log range needs low > 0"),
        ("chain = {int = [2, 6], lg = true}", "give exactly one of choices / int / float"),
        ("chain = 3", "fixed values go in \\[set\\]"),
        ('mixer = ["film", "flim"]', "did you mean 'film'"),
        ('"train.lrr" = {float = [1e-4, 1e-3]}', "did you mean 'lr'"),
        ("chain = {int = [1, 3]}", "chain length must be >= 2"),
        ('mixer = {choices = ["film"], params.conv1x1.width = {int = [1, 2]}}', "not among the choices"),
        ("chain = {int = [2.5, 3]}", "int range needs whole numbers"),
    ],
)
def test_bad_space_is_a_clear_error(tmp_path, space, message):
    from acbench.search import SearchError, load_search

    path = _spec(tmp_path, BASE + "[space]\n" + space + "\n")
    with pytest.raises(SearchError, match=message) as e:
        load_search(path)
    assert "\n" not in str(e.value)


def test_bad_file_is_a_clear_error(tmp_path):
    from acbench.search import SearchError, load_search

    with pytest.raises(SearchError, match="does not exist"):
        load_search(tmp_path / "nope.toml")
    with pytest.raises(SearchError, match="has \\[space\\], not \\[grid\\]"):
        load_search(_spec(tmp_path, BASE + "[grid]\nchain = [2]\n"))
    with pytest.raises(SearchError, match="\\[space\\] is empty"):
        load_search(_spec(tmp_path, BASE))
    with pytest.raises(SearchError, match="objective.metric must be one of"):
        load_search(_spec(tmp_path, BASE.replace("rd_loss", "psnr") + "[space]\nchain = {int = [2, 3]}\n"))
    with pytest.raises(SearchError, match="BD-rate needs >= 4"):
        load_search(_spec(tmp_path, BASE.replace("rd_loss", "bd_rate") + "[space]\nchain = {int = [2, 3]}\n"))
    with pytest.raises(SearchError, match="not in the λ list"):
        load_search(_spec(tmp_path, BASE + "lam = 0.5\n[space]\nchain = {int = [2, 3]}\n"))
    with pytest.raises(SearchError, match="pruner hyperband: got an unexpected keyword"):
        load_search(
            _spec(
                tmp_path, BASE + '[space]\nchain = {int = [2, 3]}\n[pruner]\nkind = "hyperband"\nwarmup = 3\n'
            )
        )


def test_ablation_search_file_loads():
    from acbench.search import load_search

    spec = load_search(ROOT / "ablations" / "search.toml")
    assert spec.objective.metric == "bd_rate" and len(spec.base.lmbdas) >= 4
    assert load_search(ROOT / "ablations" / "search.toml", "tiny").base.preset == "tiny"


def test_unreachable_storage_is_one_line_without_password(tmp_path):
    from acbench.search import SearchError, open_storage

    with pytest.raises(SearchError) as e:
        open_storage("postgresql://me:s3cret@127.0.0.1:1/db", tmp_path)
    msg = str(e.value)
    assert msg.startswith("cannot open storage postgresql://me:***@127.0.0.1:1/db") and "\n" not in msg
    assert "s3cret" not in msg
    with pytest.raises(SearchError, match="neither a URL"):
        open_storage("somewhere", tmp_path)


def test_cli_reports_bad_storage_without_traceback(tmp_path):
    import typer
    from typer.testing import CliRunner

    from acbench.cli_search import search

    app = typer.Typer()
    app.command()(search)
    res = CliRunner().invoke(
        app,
        [str(TINY), "--trials", "1", "--out", str(tmp_path), "--storage", "postgresql://u:pw@127.0.0.1:1/x"],
    )
    assert res.exit_code == 2
    assert "cannot open storage postgresql://u:***@127.0.0.1:1/x" in res.output
    assert "Traceback" not in res.output and "pw@" not in res.output
    res = CliRunner().invoke(app, [str(TINY), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "give --trials N" in res.output


def test_study_with_another_objective_is_refused(tmp_path):
    from acbench.search import SearchError, SearchOptions, load_search, run_search

    opts = SearchOptions(root=tmp_path)
    run_search(load_search(TINY), opts, trials=0)  # creates the study
    with pytest.raises(SearchError, match="already exists with objective RD loss total at λ=0.0067"):
        run_search(load_search(TINY, cost="steps_params"), opts, trials=0)
    with pytest.raises(SearchError, match="already exists"):
        run_search(load_search(TINY, component="z"), opts, trials=0)
    run_search(load_search(TINY, component="z"), SearchOptions(root=tmp_path, study="other"), trials=0)


def test_bd_value_reads_bd_table():
    from acbench.analysis.bdrate import bd_table
    from acbench.analysis.synthetic import synthetic_rows
    from acbench.search import Objective, bd_value

    rows = synthetic_rows(saving={"y": 0.1, "z": 0.1}, chains=(2,))
    table = bd_table(rows)
    r = table[(table["eval"] == "chain") & (table["component"] == "total")].iloc[0]
    value, why = bd_value(rows, Objective(), r["curve"], r["anchor_curve"])
    assert value == pytest.approx(r["bd_pchip"]) and value < 0 and why == ""
    cond, _ = bd_value(rows, Objective(conditioned=True), r["curve"], r["anchor_curve"])
    assert cond == pytest.approx(-10, abs=0.5)  # the known saving on the conditioned images
    nan, why = bd_value(rows, Objective(), "nope", "")
    assert nan != nan and why.startswith("n/a")


def test_pruning_hook_reports_per_lambda_steps(tiny_cfg):
    from acbench.job import Progress
    from acbench.runner import baseline_job, conditional_job
    from acbench.search import TrialRunner, _Prune

    class Trial:
        def __init__(self, prune_at):
            self.reports, self.prune_at = [], prune_at

        def report(self, value, step):
            self.reports.append((step, value))

        def should_prune(self):
            return self.reports[-1][0] == self.prune_at

    lams = sorted(tiny_cfg.lmbdas)[:2]
    c1, c2 = (conditional_job(tiny_cfg, lam) for lam in lams)
    mine = {c1.id: 0, c2.id: 1}
    t = Trial(prune_at=6)
    hook = TrialRunner._pruning_hook(t, mine, every=2)
    hook(Progress(baseline_job(tiny_cfg, lams[0]), "train", 2, 4, {"loss": 9.0}))  # shared: not the trial's
    # events of the second λ may arrive before the first's ends (a pool): keyed by job, not order
    hook(Progress(c2, "train", 1, 4, {"loss": 99.0}))  # not a reporting step
    for s in (1, 2, 3, 4):
        hook(Progress(c1, "train", s, 4, {"loss": float(s)}))
    hook(Progress(c1, "evaluate"))
    with pytest.raises(_Prune, match="λ #2, step 2"):
        hook(Progress(c2, "train", 2, 4, {"loss": 12.0}))
    assert t.reports == [(2, 2.0), (4, 4.0), (6, 12.0)]
    assert issubclass(_Prune, BaseException) and not issubclass(_Prune, Exception)


# --------------------------------------------------------------------------------------------
# Trials through the runner


def test_tiny_search_completes_resumes_and_reports(store, tmp_path):
    from acbench.search import SearchOptions, load_search, report, run_search, trial_rows

    spec = load_search(TINY)
    opts = SearchOptions(root=store)
    t0 = time.perf_counter()
    study = run_search(spec, opts, trials=3)
    first = time.perf_counter() - t0
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    study = run_search(spec, opts, trials=2)  # rerun: more trials in the same study
    trials = study.trials
    assert len(trials) == 5 and all(t.state.name == "COMPLETE" for t in trials)
    assert all(t.user_attrs["trained"] == [] for t in trials)  # the warm store: all cache hits
    for t in trials:  # trials join to the long rows through their run ids and curve
        rows = trial_rows(store, t.user_attrs["run_ids"])
        assert set(rows["curve"]) == {t.user_attrs["curve"]}
        assert set(rows["mixer"]) == {t.params["mixer"]}
    print(f"3 cached trials: {first:.2f} s")
    text, files = report(study, tmp_path / "report")
    assert text.startswith("<!-- Generated by `acbench search --report`")
    assert "## Best " in text and "## Parameter importances" in text  # one line per configuration
    names = {f.name for f in files}
    assert {"report.md", "optimization_history.png", "parallel_coordinate.png"} <= names
    assert all(f.stat().st_size > 0 for f in files)


def test_multi_objective_saving_vs_cost(store, tmp_path):
    from acbench.search import SearchOptions, load_search, report, run_search

    spec = load_search(TINY, cost="steps_params")
    study = run_search(spec, SearchOptions(root=store, study="cost"), trials=2)
    assert [len(t.values) for t in study.trials] == [2, 2]
    assert all(t.values[1] == pytest.approx(t.user_attrs["cost"]) for t in study.trials)
    assert all(t.values[1] > 0 for t in study.trials)
    text, files = report(study, tmp_path / "r")
    assert "Pareto front" in text and any(f.name == "pareto_front.png" for f in files)


def test_new_config_trains_and_is_pruned_then_resumed(store, tmp_path):
    import optuna

    from acbench.search import TrialRunner, load_search, open_storage, open_study
    from acbench.store import Run

    class Always(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    spec = load_search(_spec(tmp_path, TINY.read_text().replace("[2, 2]", "[2, 3]")))
    study = open_study(spec, open_storage(None, store), "prune")
    study.pruner = Always()
    fixed = {"mixer": "film", "chain": 3}  # chain 3: not in the warm store
    study.enqueue_trial(fixed)
    study.optimize(TrialRunner(spec, store), n_trials=1)
    (t,) = study.trials
    assert t.state.name == "PRUNED" and list(t.intermediate_values) == [1]
    (rid,) = t.user_attrs["run_ids"]
    run = Run(store, rid)
    assert not run.is_done() and run.error() is None and run.ckpt.exists()  # kept, not failed
    study.pruner = optuna.pruners.NopPruner()
    study.enqueue_trial(fixed)
    study.optimize(TrialRunner(spec, store), n_trials=1)
    assert study.trials[1].state.name == "COMPLETE" and run.is_done()
    assert study.trials[1].user_attrs["trained"] == [rid]  # resumed from the checkpoint


# --------------------------------------------------------------------------------------------
# Workers and storages


def _pg_database():
    """A fresh database on the PostgreSQL server named by ``ACBENCH_PG_URL``."""
    if not PG_URL:
        pytest.skip("no PostgreSQL server: set ACBENCH_PG_URL (`.ci/postgres.sh` starts one and prints it)")
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')")
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.OperationalError as e:
        pytest.fail(f"ACBENCH_PG_URL={PG_URL} does not answer: {e}")
    name = f"acbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return PG_URL.rsplit("/", 1)[0] + "/" + name, name


@pytest.fixture(params=["sqlite", "journal", "postgres"])
def storage(request, tmp_path):
    if request.param == "sqlite":
        yield None  # the default: optuna.db in the output folder
    elif request.param == "journal":
        yield str(tmp_path / "study.journal")
    else:
        url, name = _pg_database()
        yield url
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.slow  # two worker processes per storage
def test_two_workers_share_one_study(store, storage):
    from acbench.search import SearchOptions, load_search, run_search

    n = 4
    study = run_search(load_search(TINY), SearchOptions(root=store, storage=storage), trials=n, workers=2)
    trials = study.trials
    assert len(trials) == n and sorted(t.number for t in trials) == list(range(n))
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both processes took trials
    trained = [r for t in trials for r in t.user_attrs["trained"]]
    assert len(trained) == len(set(trained))  # no run trained twice


@pytest.mark.slow  # two worker processes per storage
def test_killed_worker_trial_is_failed_by_heartbeat_and_retried(store, tmp_path):
    """A worker dies mid-trial (SIGKILL); the next worker marks it failed and runs it again."""
    import optuna

    from acbench.search import SearchOptions, load_search, run_search

    url = f"sqlite:///{tmp_path / 'hb.db'}"
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        import acbench.executors as ex
        from acbench.search import SearchOptions, _optimize, load_search

        class Stuck(ex.LocalExecutor):  # a trial that never ends: the worker is killed in it
            def run(self, *args, **kwargs):
                time.sleep(600)

        ex.make_executor = lambda name, **options: Stuck()
        opts = SearchOptions(root=Path(sys.argv[2]), storage=sys.argv[3], heartbeat=1, grace=2)
        _optimize(load_search(Path(sys.argv[1])), opts, 1, 0, None)
        """
    )
    run_search(load_search(TINY), SearchOptions(root=store, storage=url), trials=0)
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(TINY), str(store), url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            trials = optuna.load_study(study_name="tiny", storage=url).trials
            if trials and trials[0].state.name == "RUNNING":
                break
            assert proc.poll() is None, "the worker ended before its trial started"
            time.sleep(0.2)
        else:
            pytest.fail("the worker's trial never started")
        time.sleep(1.5)  # a heartbeat or two
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (lost,) = optuna.load_study(study_name="tiny", storage=url).trials
    assert lost.state.name == "RUNNING"  # nobody has noticed yet
    time.sleep(3)  # past the grace period
    study = run_search(
        load_search(TINY), SearchOptions(root=store, storage=url, heartbeat=1, grace=2), trials=1
    )
    lost, retry = study.trials
    assert lost.state.name == "FAIL"
    assert retry.state.name == "COMPLETE" and retry.params == lost.params
    assert retry.system_attrs["failed_trial"] == lost.number


def test_cli_search_runs_and_reports(store):
    import typer
    from typer.testing import CliRunner

    from acbench.cli_search import search

    app = typer.Typer()
    app.command()(search)
    args = [str(TINY), "--trials", "2", "--out", str(store), "--report", "--quiet"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "study tiny: 2 complete" in res.output
    assert (store / "search-tiny" / "report.md").exists()
    assert (store / "search-tiny" / "optimization_history.png").exists()


def test_trials_through_the_slurm_executor(store):
    """The slurm path in a search: a warm store answers without submitting anything."""
    pytest.importorskip("submitit")
    from acbench.search import SearchOptions, load_search, run_search

    opts = SearchOptions(
        root=store, executor="slurm", executor_options={"cluster": "local", "folder": store / "slurm"}
    )
    study = run_search(load_search(TINY), opts, trials=2)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2
    assert not (store / "slurm").exists() or not list((store / "slurm").rglob("*.pkl"))


def test_a_failing_run_fails_its_trial_with_the_reason(tmp_path):
    from acbench.search import SearchOptions, load_search, run_search

    bad = TINY.read_text().replace("[set]\n", '[set]\n"codec.N" = -1\n')
    study = run_search(load_search(_spec(tmp_path, bad)), SearchOptions(root=tmp_path / "runs"), trials=2)
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    assert all(t.user_attrs["error"].startswith("baseline run ") for t in study.trials)


def test_content_gain_search_selects_on_one_half_and_reports_the_other(store, tmp_path):
    """The content-gain objective (true vs shuffled references, same λ) ranks trials on the
    even-numbered eval images; the report gives the odd-numbered half with intervals."""
    from acbench.search import SearchOptions, load_search, report, run_search, trial_rows
    from acbench.search.trial import content_figure, split_images

    assert split_images([5, 2, 3, 4], "half", "select") == [2, 4]
    assert split_images([5, 2, 3, 4], "half", "report") == [3, 5]
    assert split_images([5, 2], "", "report") == [2, 5]
    body = TINY.read_text().replace(
        'metric = "rd_loss"\nlam = 0.0067', 'metric = "same_lam"\nagainst = "shuffled"\nsplit = "half"'
    )
    spec = load_search(_spec(tmp_path, body))
    assert not spec.controls and "held back for the report" in spec.objective.describe()
    study = run_search(spec, SearchOptions(root=store, study="content"), trials=2)
    t = study.best_trial
    rows = trial_rows(store, t.user_attrs["run_ids"])
    select = content_figure(rows, spec.objective, t.user_attrs["curve"], "select")
    held = content_figure(rows, spec.objective, t.user_attrs["curve"], "report")
    assert t.value == pytest.approx(select["same_lam"]) and select["n_images"] + held["n_images"] >= 2
    text, _ = report(study, tmp_path / "r", root=store)
    section = text.split("## Held back")[1].split("\n## ")[0]
    assert f"| {t.number} |" in section and "(n=" in section
    from acbench.search import SearchError

    with pytest.raises(SearchError, match="needs against = .shuffled."):
        load_search(_spec(tmp_path, body.replace('against = "shuffled"\n', ""), "bad.toml"))


def test_content_search_file_loads():
    from acbench.search import load_search

    spec = load_search(ROOT / "ablations" / "content_search.toml")
    assert spec.objective.against == "shuffled" and spec.objective.split == "half"
