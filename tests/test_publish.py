"""Output folders published whole (fastinv.io.OutFolder): locks, manifests, kills, SIGTERM,
the umask, bad destinations, and the commands' refusals.

The subprocess tests run ``fastinv run`` on a tiny problem and kill it at random moments
(seeded). As root a folder made read-only with chmod is still writable, so the read-only
cases use a read-only tmpfs where ``mount`` is allowed, else a patched ``os.access``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fastinv.cli.main import main
from fastinv.errors import FastinvError
from fastinv.io import (
    MANIFEST,
    OutFolder,
    closes_out_folders,
    manifest_problems,
    save_npz,
    write_text,
)

SMALL_RUN = "--n 16 --samples 300 --epochs 2 --probes 100 --test-samples 100 -q".split()
TINY_BENCH = "--ns 16 --repeats 1 --k 4 --n-iter 1 --samples-per-n 2 --stages rsvd -q".split()
TINY_SWEEP = (
    "--operator random --n 8 --param cond=10 --epochs 1 --widths 8 --depths 1 --samples 60 "
    "--noise 0.01 --seeds 0,1 --probes 60 --test-samples 60 --batch-size 30 --bootstrap 100 -q"
).split()
TIMEOUT = 600  # a loaded 2-core machine


def one_line_error(res, *needles) -> str:
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for s in needles:
        assert s in lines[0], lines[0]
    return lines[0]


def leftovers(parent: Path, name: str) -> list[str]:
    """The hidden siblings of ``parent / name`` that a writer left (lock, partial, old)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def publish(out, files: dict[str, str], **kw) -> Path:
    with OutFolder(out, **kw) as folder:
        for name, text in files.items():
            write_text(folder.work / name, text)
        return folder.publish()


# ------------------------------------------------------------------------------ the io functions


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_files_and_folders_respect_the_umask(mask, tmp_path):
    old = os.umask(mask)
    try:
        p = write_text(tmp_path / "a.txt", "x")
        q = save_npz(tmp_path / "b.npz", x=np.arange(3))
        out = publish(tmp_path / "run", {"config.json": "{}"})
    finally:
        os.umask(old)
    for f in (p, q, out / "config.json", out / MANIFEST):
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask


def test_published_folder_has_a_complete_manifest(tmp_path):
    out = publish(tmp_path / "runs" / "r", {"config.json": "{}", "report.md": "# hi\n"})
    man = json.loads((out / MANIFEST).read_text())
    assert man["status"] == "complete" and man["command"] == "run"
    assert man["files"] == {"config.json": 2, "report.md": 5}
    assert manifest_problems(out) == []
    assert leftovers(out.parent, "r") == []


def test_manifest_problems_finds_incomplete_and_mixed_folders(tmp_path):
    out = publish(tmp_path / "r", {"config.json": "{}", "metrics.json": "{}"})
    (out / "arrays.npz").write_bytes(b"from another run")
    (out / "config.json").write_text('{"seed": 2}')
    probs = manifest_problems(out)
    assert any("arrays.npz is not in the manifest" in p for p in probs)
    assert any(p.startswith("config.json: 11 bytes") for p in probs)
    (out / MANIFEST).write_text(json.dumps({"status": "incomplete"}))
    assert "status is 'incomplete'" in manifest_problems(out)
    (out / MANIFEST).unlink()
    assert "cannot read" in manifest_problems(out)[0]


def test_second_writer_is_refused_at_once_and_the_lock_is_released(tmp_path):
    out = tmp_path / "r"
    first = OutFolder(out).open()
    with pytest.raises(FastinvError, match=rf"another fastinv \(pid {os.getpid()}\) is writing"):
        OutFolder(out, force=True).open()
    write_text(first.work / "config.json", "1")
    first.publish()
    assert not out.with_name(".r.lock").exists()
    publish(out, {"config.json": "22"}, force=True)
    assert (out / "config.json").read_text() == "22" and manifest_problems(out) == []


def test_force_replaces_the_whole_folder_and_no_force_refuses(tmp_path):
    out = publish(tmp_path / "r", {"config.json": "old", "training.png": "stale"})
    with pytest.raises(FastinvError, match="already holds files.*--force"):
        OutFolder(out).open()
    publish(out, {"config.json": "new"}, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", MANIFEST]
    assert leftovers(tmp_path, "r") == []


def test_force_keeps_files_fastinv_did_not_write(tmp_path):
    out = publish(tmp_path / "r", {"config.json": "old", "training.png": "stale"})
    (out / "thesis.tex").write_text("precious")
    publish(out, {"config.json": "new"}, force=True)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["config.json", MANIFEST, "thesis.tex"]  # training.png of the old run gone
    assert (out / "thesis.tex").read_text() == "precious"
    assert (out / "config.json").read_text() == "new"
    assert json.loads((out / MANIFEST).read_text())["kept"] == ["thesis.tex"]
    assert manifest_problems(out) == [] and leftovers(tmp_path, "r") == []


def test_force_over_a_folder_without_manifest_replaces_only_its_own_names(tmp_path):
    out = tmp_path / "old"  # written by an older fastinv, with a file of the user's
    out.mkdir()
    (out / "metrics.json").write_text("old")
    (out / "notes.txt").write_text("mine")
    publish(out, {"metrics.json": "new"}, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "metrics.json").read_text() == "new" and manifest_problems(out) == []


def test_stale_lock_partial_and_temporaries_of_a_killed_writer_are_cleaned(tmp_path):
    out = tmp_path / "r"
    (tmp_path / ".r.lock").write_text("999999999\n")  # a dead writer's (unlocked) lock file
    partial = tmp_path / ".r.partial"
    partial.mkdir()
    (partial / "config.json").write_text("half")
    (partial / ".metrics.json.abc.tmp").write_text("half")
    publish(out, {"metrics.json": "{}"})
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "metrics.json"]
    assert leftovers(tmp_path, "r") == []


def test_kill_between_the_two_renames_of_a_swap_restores_the_old_folder(tmp_path):
    out = publish(tmp_path / "r", {"config.json": "old"})
    os.rename(out, tmp_path / ".r.old")  # killed right after moving the old folder aside
    with OutFolder(out, force=True) as folder:
        assert (out / "config.json").read_text() == "old"  # back in place at once
        folder.close()
    assert (out / "config.json").read_text() == "old" and manifest_problems(out) == []


def test_an_abandoned_folder_is_removed_or_kept_for_resume(tmp_path):
    out = tmp_path / "s"
    err = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt), OutFolder(out, command="sweep", resumable=True) as f:
        write_text(f.work / "sweep_config.json", "{}")
        raise err  # before any result worth keeping
    assert err.fastinv_note == f"nothing was written to {out}"
    assert leftovers(tmp_path, "s") == []

    err = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt), OutFolder(out, command="sweep", resumable=True) as f:
        write_text(f.work / "models" / "m1.json", "{}")
        f.keep_on_failure = True
        raise err
    assert "kept in" in err.fastinv_note and "--resume" in err.fastinv_note
    partial = tmp_path / ".s.partial"
    assert json.loads((partial / MANIFEST).read_text())["status"] == "incomplete"
    (partial / "models" / ".m2.json.xyz.tmp").write_text("half")
    with pytest.raises(FastinvError, match="interrupted sweep was kept.*--resume.*--force"):
        OutFolder(out, command="sweep", resumable=True).open()
    with OutFolder(out, resume=True, command="sweep", resumable=True) as f:
        assert f.resumed and sorted(os.listdir(f.work / "models")) == ["m1.json"]
        f.publish()
    assert manifest_problems(out) == [] and leftovers(tmp_path, "s") == []


def test_closes_out_folders_releases_the_lock_of_a_failed_function(tmp_path):
    out = tmp_path / "r"

    @closes_out_folders
    def fails():
        OutFolder(out).open()
        raise FastinvError("bad input")

    with pytest.raises(FastinvError, match="bad input"):
        fails()
    assert leftovers(tmp_path, "r") == [] and not out.exists()
    publish(out, {"config.json": "{}"})  # not locked any more


@pytest.fixture(params=["real", "patched"])
def readonly_dir(request, tmp_path, monkeypatch):
    """A folder nothing can be written in. "real": chmod 555, or as root (whom chmod does not
    stop) a read-only tmpfs where mount is allowed, else skipped; "patched": os.access says
    no (the code path of the permission check, whoever runs the tests)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = False
    if request.param == "patched":
        real, top = os.access, Path(os.path.realpath(ro))

        def access(path, mode, *a, **k):
            p = Path(os.path.realpath(path))
            inside = p == top or top in p.parents
            return False if inside and mode & os.W_OK else real(path, mode, *a, **k)

        monkeypatch.setattr(os, "access", access)
    elif os.geteuid() != 0:
        ro.chmod(0o555)
    else:
        cmd = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)]
        mounted = subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
        if not mounted:
            pytest.skip("root, and no read-only file system can be mounted")
    yield ro
    if mounted:
        os.chdir(tmp_path)  # a test may have made it the working directory: busy
        done = subprocess.run(["umount", str(ro)], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
    ro.chmod(0o755)


def test_bad_destinations_are_refused_in_one_line(tmp_path, readonly_dir, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (afile, "is a file; give a folder name"),
        (afile / "sub" / "r", "lies under"),
        (readonly_dir / "r", "cannot "),
        (Path("."), "working directory"),
    ]
    monkeypatch.chdir(tmp_path)
    for out, match in cases:
        with pytest.raises(FastinvError, match=match):
            OutFolder(out).open()
    assert sorted(os.listdir(tmp_path)) == ["afile", "ro"]
    assert os.listdir(readonly_dir) == []


# ------------------------------------------------------------------------------ the commands


@pytest.fixture
def no_computation(monkeypatch):
    """Any computation fails the test (the destination must be refused before it)."""

    def boom(*a, **k):
        raise AssertionError("computation started before the destination was checked")

    import fastinv.problem.operators as operators
    import fastinv.workflows.bench as bench_wf

    monkeypatch.setattr(operators, "make_operator", boom)
    monkeypatch.setattr(bench_wf, "machine_info", boom)


COMMANDS = {
    "run": ["run", *SMALL_RUN],
    "sweep": ["sweep", *TINY_SWEEP],
    "bench": ["bench", *TINY_BENCH],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_destination_refused_before_any_computation(
    command, tmp_path, readonly_dir, no_computation, monkeypatch
):
    args = COMMANDS[command]
    afile = tmp_path / "afile"
    afile.write_text("x")
    one_line_error(CliRunner().invoke(main, [*args, "--out", str(afile)]), "is a file")
    one_line_error(CliRunner().invoke(main, [*args, "--out", str(afile / "x")]), "lies under")
    one_line_error(CliRunner().invoke(main, [*args, "--out", str(readonly_dir / "x")]), "cannot")
    monkeypatch.chdir(readonly_dir)  # no --out: runs/<name>-<time> in a read-only folder
    one_line_error(CliRunner().invoke(main, args), "cannot", "choose another --out")


def test_bench_refuses_a_nonempty_folder_and_force_replaces_it(tmp_path):
    out = tmp_path / "b"
    assert CliRunner().invoke(main, ["bench", *TINY_BENCH, "--out", str(out)]).exit_code == 0
    assert (out / "scaling.png").is_file() and manifest_problems(out) == []
    before = (out / "scaling.json").read_text()
    res = CliRunner().invoke(main, ["bench", *TINY_BENCH, "--out", str(out), "--no-plot"])
    one_line_error(res, "already holds files", "--force")
    assert (out / "scaling.json").read_text() == before
    args = ["bench", *TINY_BENCH, "--out", str(out), "--no-plot"]
    res = CliRunner().invoke(main, [*args, "--force"])
    assert res.exit_code == 0, res.output
    assert not (out / "scaling.png").exists()  # no stale file of the older run
    assert sorted(json.loads((out / MANIFEST).read_text())["files"]) == ["bench.md", "scaling.json"]
    assert manifest_problems(out) == [] and leftovers(tmp_path, "b") == []


def test_bench_cuda_without_a_gpu_is_one_line(tmp_path):
    from fastinv._device import cuda_available

    if cuda_available():
        pytest.skip("a CUDA device is present")
    res = CliRunner().invoke(main, ["bench", *TINY_BENCH, "--device", "cuda"])
    one_line_error(res, "no CUDA device", "--device cpu")


def test_sweep_resume_into_a_folder_without_a_sweep_is_refused(tmp_path):
    out = publish(tmp_path / "r", {"config.json": "{}", "metrics.json": "{}"})
    res = CliRunner().invoke(main, ["sweep", *TINY_SWEEP, "--out", str(out), "--resume"])
    one_line_error(res, "holds no sweep")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", MANIFEST, "metrics.json"]
    assert leftovers(tmp_path, "r") == []


def test_interrupted_sweep_is_kept_marked_and_resumed(tmp_path, monkeypatch):
    import fastinv.workflows.sweep as sweep_wf

    real = sweep_wf.run_models

    def interrupted_after_one(todo, ctx, *, finished, **kw):
        def then_stop(res):
            finished(res)
            raise KeyboardInterrupt

        real(todo[:1], ctx, finished=then_stop, **kw)

    out = tmp_path / "s"
    monkeypatch.setattr(sweep_wf, "run_models", interrupted_after_one)
    res = CliRunner().invoke(main, ["sweep", *TINY_SWEEP, "--out", str(out)])
    assert res.exit_code == 130, res.output
    assert "interrupted; the unfinished sweep is kept in" in res.output
    partial = tmp_path / ".s.partial"
    assert not out.exists()
    assert json.loads((partial / MANIFEST).read_text())["status"] == "incomplete"
    kept = sorted((partial / "models").glob("*.json"))
    assert len(kept) == 1
    first = kept[0].read_text()

    monkeypatch.setattr(sweep_wf, "run_models", real)
    res = CliRunner().invoke(main, ["sweep", *TINY_SWEEP, "--out", str(out)])
    one_line_error(res, "--resume", "--force")  # the kept sweep is not silently dropped
    res = CliRunner().invoke(main, ["sweep", *TINY_SWEEP, "--out", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    assert "(1 trained now)" in res.output
    assert (out / "models" / kept[0].name).read_text() == first
    assert manifest_problems(out) == [] and leftovers(tmp_path, "s") == []


# ------------------------------------------------------------------------------ real processes


def fastinv(*args: str) -> list[str]:
    return [sys.executable, "-c", "from fastinv.cli.main import main; main()", *args]


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    """Until ``path`` exists or ``proc`` ends."""
    deadline = time.monotonic() + TIMEOUT
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def check_complete(out: Path) -> None:
    assert manifest_problems(out) == [], manifest_problems(out)
    names = set(os.listdir(out))
    assert {"config.json", "arrays.npz", "metrics.json", "report.md", MANIFEST} <= names


def test_two_processes_into_one_out(tmp_path):
    out = tmp_path / "cc"
    procs = {
        seed: subprocess.Popen(
            fastinv("run", *SMALL_RUN, "--seed", str(seed), "--out", str(out)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    }
    done = {}
    for seed, p in procs.items():
        stdout, stderr = p.communicate(timeout=TIMEOUT)
        done[seed] = (p.returncode, stdout, stderr)
    winners = [seed for seed, (rc, _, _) in done.items() if rc == 0]
    assert len(winners) == 1, done
    (loser,) = set(done) - set(winners)
    rc, _, err = done[loser]
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "is writing --out" in err or "already holds files" in err, err
    check_complete(out)
    assert json.loads((out / "config.json").read_text())["seed"] == winners[0]
    network = json.loads((out / "metrics.json").read_text())["errors"]["network"]
    assert f"network {network:.4g}" in done[winners[0]][1]  # the winner's own numbers
    assert leftovers(tmp_path, "cc") == []


def test_a_held_lock_refuses_another_process_at_once(tmp_path):
    out = tmp_path / "r"
    with OutFolder(out) as folder:
        proc = subprocess.run(
            fastinv("run", *SMALL_RUN, "--out", str(out), "--force"),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        folder.close()
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: another fastinv (pid {os.getpid()}) is writing --out {out}; wait for it to "
        "finish or choose another --out"
    )


def test_sigkill_at_random_moments_then_rerun(tmp_path):
    rng = np.random.default_rng(11)
    out = tmp_path / "k"
    moments = []
    for force in (False, True, True):  # the first into no folder, then over a complete one
        proc = subprocess.Popen(
            fastinv("run", *SMALL_RUN, "--out", str(out), *(["--force"] * force)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(tmp_path / ".k.partial", proc)  # the run has started computing
        moments.append(float(rng.uniform(0.0, 8.0)))
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(moments[-1])
        proc.kill()
        proc.wait(TIMEOUT)
        visible = [p for p in os.listdir(tmp_path) if not p.startswith(".")]
        assert visible in ([], ["k"]), (moments, visible)
        if out.exists():  # the old folder or the new one, whole
            check_complete(out)
        if not force:  # a rerun without --force completes what the kill left undone
            res = CliRunner().invoke(main, ["run", *SMALL_RUN, "--out", str(out)])
            if res.exit_code != 0:
                one_line_error(res, "already holds files")
            check_complete(out)
    res = CliRunner().invoke(main, ["run", *SMALL_RUN, "--out", str(out)])
    one_line_error(res, "already holds files", "--force")
    res = CliRunner().invoke(main, ["run", *SMALL_RUN, "--out", str(out), "--force"])
    assert res.exit_code == 0, res.output
    check_complete(out)
    assert leftovers(tmp_path, "k") == [], moments


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    out = tmp_path / "t"
    proc = subprocess.Popen(
        fastinv("run", *SMALL_RUN, "--out", str(out)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(tmp_path / ".t.partial", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, err
    assert err.strip() == f"terminated (SIGTERM); nothing was written to {out}", err
    assert not out.exists() and leftovers(tmp_path, "t") == []
