"""The README's job-array script on a real Slurm: a one-node cluster of this machine (munged,
slurmctld and slurmd from Debian's slurm-wlm and munge, all state in a temporary folder, on
ports of its own), a small synthetic sweep in 3 shards sharing one folder. Every run is trained
exactly once, and its snapshot files are byte-identical to a sequential `drift sweep`'s."""
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import drift_bin, run_drift, skip

README = Path(__file__).resolve().parents[2] / "README.md"
DAEMONS = ["munged", "mungekey", "slurmctld", "slurmd"]
CLIENTS = ["sbatch", "squeue", "sinfo", "scontrol", "scancel"]
SHARDS = 3
SWEEP = """\
dataset = "synthetic"
synthetic-train = 600
synthetic-test = 200
epochs = 3
batch = 50
snapshots = "0,1,last"

[[grid]]
width = [8, 16, 32]
seed = [0, 1]
"""
RUNS = 6
# `drift sweep` prints one such line per run it finished (crates/drift-cli/src/progress.rs).
FINISHED = re.compile(r"^sweep: \[\d+/\d+\] (\S+) (completed|diverged) after \d+ epochs", re.M)


def readme_job_script() -> str:
    """The sbatch script of the README's section "On a cluster"."""
    script = re.search(r"^### On a cluster\n.*?^```sh\n(#!.*?)^```", README.read_text(), flags=re.S | re.M)
    assert script, "README.md's section '### On a cluster' shows the job script in a ```sh block"
    return script.group(1)


def free_ports(n: int) -> list:
    """`n` distinct TCP ports free on this host just now (all held open together while chosen)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"({e})"
    return "\n".join(text[-lines:])


class Cluster:
    """A one-node Slurm cluster of this host, everything in `root`."""

    def __init__(self, root: Path):
        self.root = root
        self.procs = {}
        self.conf = root / "slurm.conf"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SLURM_", "SBATCH_", "SQUEUE_", "SINFO_", "SCONTROL_", "SALLOC_", "SRUN_"))}
        self.env["SLURM_CONF"] = str(self.conf)

    def command(self, *args, timeout=20, check=True):
        proc = subprocess.run(list(args), capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr}\n{self.report()}", pytrace=False)
        return proc

    def spawn(self, name, *args):
        with open(self.root / f"{name}.stderr", "w") as err:
            self.procs[name] = subprocess.Popen([*args], stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                                env=self.env, start_new_session=True)

    def wait_for(self, what: str, ready, seconds: float):
        """Polls `ready()` until it is true; a daemon that died or a timeout is a skip (slurm)."""
        deadline = time.monotonic() + seconds
        while not ready():
            dead = [name for name, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{dead[0]} exited {self.procs[dead[0]].returncode}" if dead else f"no {what} in {seconds} s"
                logs = " | ".join(tail(self.log(n), 3).replace("\n", " | ") for n in dead or ["slurmctld"])
                print(self.report())
                skip("slurm", f"the one-node Slurm cluster did not start: {why}: {logs}")
            time.sleep(0.2)

    def setup_command(self, *args) -> str:
        """The output of a command that sets the cluster up; its failure is a skip (slurm)."""
        proc = subprocess.run(list(args), capture_output=True, text=True, env=self.env, timeout=20)
        if proc.returncode != 0:
            skip("slurm", f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    def start(self):
        root = self.root
        (root / "state").mkdir()
        (root / "spool").mkdir()
        # munged wants its socket's folder open to all, and its key readable by its owner alone.
        root.chmod(0o755)
        self.setup_command("mungekey", "--create", f"--keyfile={root / 'munge.key'}")
        socket_path = root / "munge.socket"
        self.spawn("munged", "munged", "--foreground", f"--key-file={root / 'munge.key'}", f"--socket={socket_path}",
                   f"--pid-file={root / 'munged.pid'}", f"--seed-file={root / 'munged.seed'}")
        self.wait_for("munge socket", socket_path.exists, 10)

        # This host as it is: slurmd's own reading of its CPUs and memory.
        node = self.setup_command("slurmd", "-C").splitlines()[0]
        self.host = re.match(r"NodeName=(\S+)", node).group(1)
        ctld_port, slurmd_port = free_ports(2)
        self.conf.write_text(f"""\
ClusterName=drift-test
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket_path}
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'slurmctld.log'}
SlurmdLogFile={root / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
{node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        self.spawn("slurmctld", "slurmctld", "-D", "-c", "-f", str(self.conf))
        self.spawn("slurmd", "slurmd", "-D", "-N", self.host, "-f", str(self.conf))

        def idle():
            try:
                proc = self.command("sinfo", "-h", "-N", "-o", "%t", check=False, timeout=10)
            except subprocess.TimeoutExpired:
                return False
            return proc.returncode == 0 and proc.stdout.strip() == "idle"

        self.wait_for("idle node in sinfo", idle, 60)

    def stop(self):
        """Cancels what is left of the jobs, then stops the daemons (TERM, then KILL)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                self.command("scancel", "--user", str(os.getuid()), check=False, timeout=10)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and self.command("squeue", "-h", check=False, timeout=10).stdout:
                    time.sleep(0.3)
            except subprocess.TimeoutExpired:
                pass
        for name in ["slurmd", "slurmctld", "munged"]:
            proc = self.procs.get(name)
            if proc is None:
                continue
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    def log(self, name: str) -> Path:
        """A daemon's log: its log file once open (munged in the foreground logs to stderr)."""
        log = self.root / f"{name}.log"
        return log if log.exists() else self.root / f"{name}.stderr"

    def report(self) -> str:
        parts = []
        for name in ["slurmctld", "slurmd", "munged"]:
            log = self.log(name)
            parts.append(f"--- {log.name} (end) ---\n{tail(log)}")
        for out in sorted(self.root.glob("shard-*.out")):
            parts.append(f"--- {out.name} ---\n{tail(out, 60)}")
        return "\n".join(parts)


@pytest.fixture
def cluster():
    missing = [tool for tool in DAEMONS + CLIENTS if shutil.which(tool) is None]
    if missing:
        skip("slurm", f"{', '.join(missing)} not found; install the Debian packages slurm-wlm and munge (make slurm)")
    if os.geteuid() != 0:
        skip("slurm", "the one-node Slurm cluster runs its daemons as root; run the test as root")
    # Short, so the munge socket's path fits in a socket address.
    root = Path(tempfile.mkdtemp(prefix="drift-slurm-"))
    c = Cluster(root)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_readme_job_array_trains_every_run_once(cluster):
    started = time.monotonic()
    root = cluster.root
    sweep = root / "small.toml"
    sweep.write_text(SWEEP)
    out, reference = root / "shared", root / "sequential"
    script = root / "job.sh"
    script.write_text(readme_job_script())
    drift_dir = str(Path(drift_bin()).resolve().parent)
    exports = {"SWEEP": sweep, "OUT": out, "DRIFT_CACHE": root / "cache", "PATH": f"{drift_dir}:{os.environ['PATH']}"}
    assert not any("," in str(v) for v in exports.values()), "sbatch --export splits its list at commas"
    # One CPU per task (the README asks for 2) so that two shards share the folder at once here.
    submitted = cluster.command(
        "sbatch", "--parsable", f"--array=1-{SHARDS}", "--cpus-per-task=1", f"--output={root}/shard-%a.out",
        f"--chdir={root}", "--export=" + ",".join(["ALL"] + [f"{k}={v}" for k, v in exports.items()]), str(script))
    job = submitted.stdout.strip().split(";")[0]

    # Meanwhile, the same sweep in one sequential `drift sweep`.
    run_drift("sweep", sweep, "--out", reference, "--jobs", 1, env={"DRIFT_CACHE": str(root / "cache-sequential")})

    deadline = time.monotonic() + 180
    while cluster.command("squeue", "-h", "-j", job, "-o", "%i", check=False, timeout=10).stdout.strip():
        if time.monotonic() > deadline:
            pytest.fail(f"job array {job} still queued or running after 180 s\n{cluster.report()}", pytrace=False)
        time.sleep(0.5)

    # Completed tasks stay known to slurmctld (MinJobAge), so their states need no accounting.
    shown = cluster.command("scontrol", "-o", "show", "job", job).stdout
    states = re.findall(r"ArrayTaskId=(\d+) .*?JobState=(\S+) .*?ExitCode=(\S+)", shown)
    assert sorted(states) == [(str(i), "COMPLETED", "0:0") for i in range(1, SHARDS + 1)], \
        f"tasks of job {job}: {states}\n{cluster.report()}"

    trained = collections.Counter()
    for i in range(1, SHARDS + 1):
        text = (root / f"shard-{i}.out").read_text()
        assert f"sweep (shard {i}/{SHARDS}):" in text, f"shard-{i}.out is shard {i} of {SHARDS}\n{cluster.report()}"
        trained.update(run_id for run_id, _ in FINISHED.findall(text))

    ids = sorted(p.name for p in (reference / "runs").iterdir())
    assert len(ids) == RUNS, ids
    assert sorted(p.name for p in (out / "runs").iterdir()) == ids
    assert trained == collections.Counter(ids), f"runs trained by the shards: {dict(trained)}\n{cluster.report()}"
    for run_id in ids:
        mine, theirs = out / "runs" / run_id, reference / "runs" / run_id
        assert (mine / "runs.parquet").is_file(), f"{run_id} is finished"
        snapshots = sorted(p.name for p in (theirs / "snapshots").iterdir())
        assert snapshots and sorted(p.name for p in (mine / "snapshots").iterdir()) == snapshots, run_id
        for name in snapshots:
            assert (mine / "snapshots" / name).read_bytes() == (theirs / "snapshots" / name).read_bytes(), \
                f"{run_id}/snapshots/{name} differs from the sequential sweep's"
    print(f"job array of {SHARDS} shards, {RUNS} runs: {time.monotonic() - started:.1f} s")
