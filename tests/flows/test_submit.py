"""``sevenomni submit``: routing of jobs, FireWorks runs, store configs, bad input.

No MongoDB server can be started on the machines these tests run on (no
package for it, no Docker daemon, no download of ``mongod`` at test time), so
MongoDB is mongomock throughout:

* the CLI test uses FireWorks' own mongomock LaunchPad
  (``MONGOMOCK_SERVERSTORE_FILE``, a JSON file shared by the ``sevenomni
  submit`` and ``rlaunch`` processes) and the embedded results store;
* the in-process tests point pymongo's ``MongoClient`` in FireWorks and maggma
  at one mongomock server, so the LaunchPad and the results store
  (``workflows/cluster/store_mongo.yaml``: MongoStore + GridFS) run their real
  MongoDB code against it.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sevenomni_flows.cli import main
from sevenomni_flows.spec import SpecError, load_spec
from sevenomni_flows.submit import CPU, MODEL, ClusterSettings, job_kind, route

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLUSTER = Path(__file__).parents[2] / "workflows" / "cluster"

FAST = """
model: 7net-0
device: cpu
relax: {fmax: 0.05, max_steps: 200}
properties: [relax, static]
"""


def write_spec(folder, body: str):
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent(FAST + body))
    return path


def query(store, capsys, *args):
    capsys.readouterr()
    status = main(["query", *args, "--store", str(store), "--format", "json"])
    assert status == 0
    return json.loads(capsys.readouterr().out)


# ----------------------------------------------------------------- routing


def planned(tmp_path, body, store=None):
    from sevenomni_flows.jobs import ModelSettings
    from sevenomni_flows.run import open_store, plan

    spec, base = load_spec(write_spec(tmp_path, body))
    settings = ModelSettings(spec.model, spec.task, spec.device, spec.dtype)
    store = store or open_store(tmp_path / "results")
    return spec, plan(spec, base, store, settings, str(tmp_path / "plots"))


def test_routing_puts_model_jobs_on_gpu_and_the_rest_on_cpu(tmp_path):
    spec, run = planned(
        tmp_path,
        """
structures:
  - {bulk: Si, crystal: diamond, a: 5.43}
  - {bulk: Cu, crystal: fcc, a: 3.61}
  - {bulk: Al, crystal: fcc, a: 4.05}
cluster:
  structures_per_job: 2
  gpu: {category: gpu, fworker: big, worker: gpu_w, exec_config: cuda,
        resources: {gres: "gpu:1"}}
  cpu: {category: cpu, worker: cpu_w}
""",
    )
    jobs = [j for j, _ in run.flow.iterflow()]
    kinds = {j.name: job_kind(j) for j in jobs}
    # one relax and one static job per chunk (2 + 1 structures), none per material
    assert kinds == {
        "relax (2 structures)": MODEL,
        "relax (1 structures)": MODEL,
        "static (2 structures)": MODEL,
        "static (1 structures)": MODEL,
    }
    assert route(run.flow, spec.cluster, "fireworks") == {MODEL: 4, CPU: 0}
    for j in jobs:
        assert j.config.manager_config == {"_category": "gpu", "_fworker": "big"}
    route(run.flow, spec.cluster, "jobflow-remote")
    for j in jobs:
        config = j.config.manager_config
        if kinds[j.name] == MODEL:
            assert config["worker"] == "gpu_w"
            assert config["exec_config"] == "cuda"
            assert config["resources"] == {"gres": "gpu:1"}
        else:
            assert config["worker"] == "cpu_w"
            assert "resources" not in config


def test_adsorption_jobs_are_classified_and_cpu_functions_route_to_cpu(monkeypatch):
    from jobflow import job

    from sevenomni_flows.properties.adsorption import (
        MofAdsorptionMaker,
        SlabAdsorptionMaker,
    )
    from sevenomni_flows.submit import resources

    slab = SlabAdsorptionMaker(adsorbates=["CO"]).make({"fake": 1}, "Cu")
    kinds = {j.name: job_kind(j) for j, _ in slab.iterflow()}
    assert kinds == {"relax": MODEL, "slab adsorption": MODEL}
    mof = MofAdsorptionMaker(guests=["CO2"]).make("x.cif", "X")
    assert job_kind(mof) == MODEL

    @job
    def tabulate(rows):
        return rows

    assert job_kind(tabulate([])) == MODEL
    monkeypatch.setattr(resources, "CPU_FUNCTIONS", {"tabulate"})
    assert job_kind(tabulate([])) == CPU


def test_spec_cluster_section_is_validated(tmp_path):
    path = write_spec(tmp_path, "cluster:\n  gpu: {categroy: gpu}\n")
    with pytest.raises(SpecError, match=r"cluster\.gpu\.categroy: unknown key"):
        load_spec(path)
    path = write_spec(tmp_path, "cluster:\n  structures_per_job: 0\n")
    with pytest.raises(SpecError, match=r"cluster\.structures_per_job"):
        load_spec(path)
    spec, _ = load_spec(CLUSTER / "screening.yaml")
    assert spec.cluster.gpu.resources == {"gres": "gpu:1"}
    assert ClusterSettings().gpu.category == "gpu"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "slurm"], "invalid choice: 'slurm'"),
        (["--engine", "fireworks", "--launchpad", "no.yaml"], "no.yaml does not exist"),
        (["--engine", "fireworks"], "no LaunchPad config"),
        (["--engine", "fireworks", "--project", "p"], "--project goes with"),
        (["--engine", "jobflow-remote"], "needs --project"),
        (["--engine", "jobflow-remote", "--store", "x"], "--store goes with"),
        (["--engine", "jobflow-remote", "--launchpad", "x"], "--launchpad goes"),
    ],
)
def test_submit_bad_input_names_the_culprit(
    tmp_path, monkeypatch, capsys, args, message
):
    import fireworks.fw_config

    monkeypatch.setattr(fireworks.fw_config, "LAUNCHPAD_LOC", None)
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, "structures:\n  - {bulk: Si, crystal: diamond}\n")
    try:
        status = main(["submit", str(spec), *args])
    except SystemExit as exit_:  # argparse
        status = exit_.code
    assert status == 2
    assert message in capsys.readouterr().err


def test_store_config_errors_name_the_file(tmp_path):
    from sevenomni_flows.stores import StoreConfigError, job_store_from_file

    with pytest.raises(StoreConfigError, match=r"missing\.yaml: cannot read"):
        job_store_from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("docs_store: {type: MongoStore, database: a, collection_name: b}\n")
    with pytest.raises(StoreConfigError, match=r"bad\.yaml: additional_stores\.data"):
        job_store_from_file(bad)
    bad.write_text("docs_store: {type: MongoStore}\nadditional_stores: {data: {}}\n")
    with pytest.raises(
        StoreConfigError, match=r"bad\.yaml: additional_stores\.results"
    ):
        job_store_from_file(bad)
    bad.write_text(
        "docs_store: {type: NoSuchStore}\nadditional_stores: {data: {}, results: {}}\n"
    )
    with pytest.raises(StoreConfigError, match=r"bad\.yaml: invalid store config"):
        job_store_from_file(bad)


def test_mongo_store_gets_summary_indexes(mongo):
    from sevenomni_flows.run import open_store
    from sevenomni_flows.stores import INDEXED

    store = open_store(CLUSTER / "store_mongo.yaml")
    info = store.additional_stores["results"]._collection.index_information()
    indexed = {key for spec in info.values() for key, _ in spec["key"]}
    assert {"key", "structure_id", "state", "label"} <= indexed
    assert set(INDEXED) <= indexed
    assert "bulk_modulus_vrh" in indexed


# ------------------------------------------------------------ example files


def test_example_cluster_configs_parse():
    from fireworks import FWorker, LaunchPad
    from fireworks.user_objects.queue_adapters.common_adapter import CommonAdapter
    from maggma.stores import GridFSStore, MongoStore

    from sevenomni_flows.stores import job_store_from_file

    store = job_store_from_file(CLUSTER / "store_mongo.yaml")
    assert type(store.docs_store) is MongoStore
    assert type(store.additional_stores["data"]) is GridFSStore
    lp = LaunchPad.from_file(str(CLUSTER / "my_launchpad.yaml"))
    assert lp.name == "sevenomni_fireworks"
    assert FWorker.from_file(str(CLUSTER / "my_fworker_gpu.yaml")).category == "gpu"
    assert FWorker.from_file(str(CLUSTER / "my_fworker_cpu.yaml")).category == "cpu"
    qadapter = CommonAdapter.from_file(str(CLUSTER / "my_qadapter.yaml"))
    script = qadapter.get_script_str(".")
    assert "#SBATCH --gres=gpu:1" in script and "rlaunch" in script


def test_example_jobflow_remote_project_parses():
    pytest.importorskip("jobflow_remote")
    import yaml
    from jobflow_remote.config.base import Project

    data = yaml.safe_load((CLUSTER / "jobflow_remote_project.yaml").read_text())
    project = Project.model_validate(data)
    assert set(project.workers) == {"gpu_worker", "cpu_worker"}
    assert project.workers["gpu_worker"].resources["gres"] == "gpu:1"
    assert "cuda" in project.exec_config
    spec, _ = load_spec(CLUSTER / "screening.yaml")
    assert spec.cluster.gpu.worker in project.workers
    assert spec.cluster.cpu.worker in project.workers
    assert spec.cluster.gpu.exec_config in project.exec_config


# ----------------------------------------------------- FireWorks, in process


@pytest.fixture
def mongo(monkeypatch):
    """One mongomock server behind every MongoClient of FireWorks and maggma."""
    import fireworks.core.launchpad
    import maggma.stores.gridfs
    import maggma.stores.mongolike
    import mongomock_ng
    import mongomock_ng.gridfs
    from mongomock_ng.store import ServerStore

    server = ServerStore()

    class Client(mongomock_ng.MongoClient):
        def close(self):
            """mongomock_ng's close() empties the server for all clients."""

    def client(*args, **kwargs):
        return Client(*args, _store=server, **kwargs)

    mongomock_ng.gridfs.enable_gridfs_integration()
    for module in (fireworks.core.launchpad, maggma.stores.mongolike):
        monkeypatch.setattr(module, "MongoClient", client)
    monkeypatch.setattr(maggma.stores.gridfs, "MongoClient", client)
    return server


def launch(lp, fworker_file, max_loops=1):
    """``rlaunch -w fworker_file rapidfire`` in this process; returns #launches."""
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    before = lp.launches.count_documents({})
    rapidfire(lp, FWorker.from_file(str(fworker_file)), nlaunches=0, sleep_time=0)
    return lp.launches.count_documents({}) - before


def run_workers(lp, rounds=6):
    """GPU and CPU workers in turns until nothing is ready; returns #launches."""
    total = 0
    for _ in range(rounds):
        n = launch(lp, CLUSTER / "my_fworker_gpu.yaml")
        n += launch(lp, CLUSTER / "my_fworker_cpu.yaml")
        total += n
        if n == 0:
            break
    return total


def states(lp):
    """``{name: [state, ...]}`` of the fireworks (in order of fw_id)."""
    out = {}
    for d in lp.fireworks.find({}).sort("fw_id"):
        out.setdefault(d["name"], []).append(d["state"])
    return out


def test_fireworks_failure_stays_with_its_material_and_rerun_picks_it_up(
    tmp_path, mongo, capsys, monkeypatch
):
    """Workers on a mongomock LaunchPad, results in MongoStore + GridFS.

    One structure per job.  Cu's static job raises inside its model call on
    the worker (a fault injected there); the job boundary stores a failed
    document for it, Si's jobs all complete.  Submitting again plans and runs
    only Cu's static job, whose document then replaces the failed one.  The
    model is read once in this process, like in a worker's ``rlaunch
    rapidfire``.
    """
    from fireworks import LaunchPad

    from sevenomni_flows.properties.relax import StaticMaker

    spec = write_spec(
        tmp_path,
        """
structures:
  - {bulk: Si, crystal: diamond, a: 5.43}
  - {bulk: Cu, crystal: fcc, a: 3.61}
cluster: {structures_per_job: 1}
""",
    )
    lp_file = CLUSTER / "my_launchpad.yaml"
    store = CLUSTER / "store_mongo.yaml"
    monkeypatch.chdir(tmp_path)  # rocket launch folders
    LaunchPad.from_file(str(lp_file)).reset("", require_password=False)
    submit = ["submit", str(spec), "--engine", "fireworks"]
    submit += ["--launchpad", str(lp_file), "--store", str(store)]

    real = StaticMaker.compute

    def crash_on_cu(self, items, targets, ctx):
        if any(it.formula == "Cu" for it in items):
            raise RuntimeError("CUDA error: out of memory (injected)")
        return real(self, items, targets, ctx)

    monkeypatch.setattr(StaticMaker, "compute", crash_on_cu)
    import sevenomni_core.model.potential as potential

    loads = []  # checkpoint reads in this (submitting and worker) process
    monkeypatch.setattr(potential, "_CACHE", {})
    monkeypatch.setattr(potential, "_NETWORKS", {})
    read = potential.read_checkpoint
    monkeypatch.setattr(
        potential, "read_checkpoint", lambda path: loads.append(path) or read(path)
    )
    assert main(submit) == 0
    out = capsys.readouterr().out
    assert "0 results reused, 4 jobs to submit" in out
    lp = LaunchPad.from_file(str(lp_file))
    assert {d["spec"]["_category"] for d in lp.fireworks.find({})} == {"gpu"}

    assert run_workers(lp) == 4
    assert states(lp) == {
        "relax (1 structures)": ["COMPLETED", "COMPLETED"],
        "static (1 structures)": ["COMPLETED", "COMPLETED"],
    }
    # each firework ran on the worker of its category
    for launch_doc in lp.launches.find({}):
        fw = lp.fireworks.find_one({"fw_id": launch_doc["fw_id"]})
        assert launch_doc["fworker"]["category"] == fw["spec"]["_category"]

    rows = query(store, capsys, '{"state": "completed"}')
    assert {(r["formula"], r["property"]) for r in rows} == {
        ("Si", "relax"),
        ("Cu", "relax"),
        ("Si", "static"),
    }
    si = next(r for r in rows if r["property"] == "static")
    assert -6.0 < si["energy_per_atom"] < -5.0  # eV/atom, Si with 7net-0
    [cu] = query(store, capsys, '{"state": "failed"}')
    assert cu["formula"] == "Cu" and cu["error_type"] == "RuntimeError"
    assert "out of memory" in cu["error"]

    monkeypatch.setattr(StaticMaker, "compute", real)  # the worker is fixed
    assert main(submit) == 0
    out = capsys.readouterr().out
    assert "3 results reused, 1 jobs to submit" in out
    assert run_workers(lp) == 1
    assert states(lp)["static (1 structures)"] == ["COMPLETED"] * 3
    rows = query(store, capsys, '{"property": "static"}')
    assert len(rows) == 2  # Cu's failed document was replaced
    cu = next(r for r in rows if r["formula"] == "Cu")
    assert cu["state"] == "completed" and -4.5 < cu["energy_per_atom"] < -3.0
    assert len(loads) == 1  # one model load for two submits and six launches


# ------------------------------------------------ FireWorks, as commands


def test_fireworks_submit_and_rlaunch_commands(tmp_path, capsys):
    """``sevenomni submit`` then ``rlaunch rapidfire``, each its own process.

    The LaunchPad is FireWorks' mongomock one (``MONGOMOCK_SERVERSTORE_FILE``,
    persisted to a JSON file between processes); results go to the embedded
    store, which ``sevenomni query`` then reads.
    """
    spec = write_spec(
        tmp_path,
        """
structures:
  - {bulk: Si, crystal: diamond, a: 5.43}
  - {bulk: Al, crystal: fcc, a: 4.05}
""",
    )
    db = tmp_path / "launchpad.json"
    db.write_text("{}")
    env = {**os.environ, "MONGOMOCK_SERVERSTORE_FILE": str(db)}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    bin_dir = Path(sys.executable).parent
    lp = str(CLUSTER / "my_launchpad.yaml")
    fworker = tmp_path / "my_fworker.yaml"  # one node taking both kinds
    fworker.write_text("name: node\ncategory: [gpu, cpu]\nquery: '{}'\n")
    store = tmp_path / "results"

    def command(*args):
        done = subprocess.run(
            [str(a) for a in args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    submit = [bin_dir / "sevenomni", "submit", spec, "--engine", "fireworks"]
    submit += ["--launchpad", lp, "--store", store]
    done = subprocess.run([str(a) for a in submit], env=env, capture_output=True)
    assert done.returncode == 2 and b"not initialised" in done.stderr
    command(bin_dir / "lpad", "-l", lp, "reset", "--password", _today())
    assert "submitted 2 fireworks" in command(*submit)
    log = command(bin_dir / "rlaunch", "-l", lp, "-w", fworker, "rapidfire")
    assert log.count("Rocket finished") == 2
    report = command(
        bin_dir / "lpad", "-l", lp, "get_fws", "-d", "count", "-s", "COMPLETED"
    )
    assert report.strip().splitlines()[-1] == "2"

    rows = query(store, capsys, '{"property": "static"}')
    energies = {r["formula"]: r["energy_per_atom"] for r in rows}
    assert set(energies) == {"Si", "Al"}
    assert -6.0 < energies["Si"] < -5.0 and -4.5 < energies["Al"] < -3.0


def _today():
    from datetime import datetime

    return datetime.now().strftime("%Y-%m-%d")


# ------------------------------------------------------------ jobflow-remote


def jf_project(folder: Path, bin_dir: Path) -> str:
    """A jobflow-remote project: local shell workers, queue and jobstore on
    MongoDB (mongomock here); returns its jobstore as a store config file."""
    import yaml

    def mongo(database, collection, kind="MongoStore"):
        return {
            "type": kind,
            "host": "localhost",
            "port": 27017,
            "database": database,
            "collection_name": collection,
        }

    def worker():
        return {
            "type": "local",
            "scheduler_type": "shell",
            "work_dir": str(folder / "work"),
            "pre_run": f"export PATH={bin_dir}:$PATH OMP_NUM_THREADS=1",
        }

    jobstore = {
        "docs_store": mongo("sevenomni", "outputs"),
        "additional_stores": {
            "data": mongo("sevenomni", "data", "GridFSStore"),
            "results": {**mongo("sevenomni", "results"), "key": "key"},
        },
    }
    project = {
        "name": "sevenomni",
        "base_dir": str(folder / "base"),
        "runner": {
            "delay_checkout": 1,
            "delay_check_run_status": 1,
            "delay_advance_status": 1,
        },
        "workers": {"gpu_worker": worker(), "cpu_worker": worker()},
        "exec_config": {"cuda": {"export": {"SEVENOMNI_TEST": "1"}}},
        "queue": {"store": mongo("queue", "jobs")},
        "jobstore": jobstore,
    }
    (folder / "projects").mkdir(parents=True)
    (folder / "projects" / "sevenomni.yaml").write_text(yaml.safe_dump(project))
    (folder / "store.yaml").write_text(yaml.safe_dump(jobstore))
    return str(folder / "store.yaml")


@pytest.fixture
def jf_folder(tmp_path, monkeypatch):
    """jobflow-remote's settings pointed at an empty projects folder."""
    jobflow_remote = pytest.importorskip("jobflow_remote")
    folder = tmp_path / "jfremote"
    monkeypatch.setenv("JFREMOTE_PROJECTS_FOLDER", str(folder / "projects"))
    monkeypatch.setenv("JFREMOTE_CONFIG_FILE", str(folder / "config.yaml"))
    monkeypatch.setattr(
        jobflow_remote.SETTINGS, "projects_folder", str(folder / "projects")
    )
    monkeypatch.setattr(jobflow_remote.SETTINGS, "project", None)
    return folder


def test_jobflow_remote_submit_and_runner(tmp_path, mongo, jf_folder, capsys):
    """``sevenomni submit --engine jobflow-remote`` and jobflow-remote's Runner.

    The Runner runs in this process (``Runner.run_all_jobs``); each job runs
    in its own ``jf execution run`` process through the local shell worker,
    as on a cluster node.  Queue and jobstore are mongomock.
    """
    from jobflow_remote import ConfigManager
    from jobflow_remote.jobs.runner import Runner

    store = jf_project(jf_folder, Path(sys.executable).parent)
    spec = write_spec(
        tmp_path, "structures:\n  - {bulk: Si, crystal: diamond, a: 5.43}\n"
    )
    project = ConfigManager().get_project("sevenomni")
    project.get_job_controller().reset(max_limit=0)

    submit = ["submit", str(spec), "--engine", "jobflow-remote"]
    assert main([*submit, "--project", "nope"]) == 2
    assert "no jobflow-remote project 'nope'" in capsys.readouterr().err
    assert main([*submit, "--project", "sevenomni", "--worker", "gpu"]) == 2
    assert "unknown gpu worker 'gpu'" in capsys.readouterr().err
    args = [*submit, "--project", "sevenomni", "--worker", "gpu_worker"]
    args += ["--cpu-worker", "cpu_worker"]
    assert main(args) == 0
    assert "submitted 2 jobs" in capsys.readouterr().out

    Runner(project_name="sevenomni").run_all_jobs(max_seconds=240)
    jobs = project.get_job_controller().get_jobs_info()
    assert {(j.name, j.state.value, j.worker) for j in jobs} == {
        ("relax 1 structures", "COMPLETED", "gpu_worker"),
        ("static 1 structures", "COMPLETED", "gpu_worker"),
    }
    rows = query(store, capsys, '{"property": "static"}')
    assert len(rows) == 1 and -6.0 < rows[0]["energy_per_atom"] < -5.0
    main(["query", "--project", "sevenomni", "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    assert {(r["formula"], r["property"], r["state"]) for r in rows} == {
        ("Si", "relax", "completed"),
        ("Si", "static", "completed"),
    }
    assert main(args) == 0  # everything stored: nothing to submit
    assert "2 results reused, 0 jobs to submit" in capsys.readouterr().out
