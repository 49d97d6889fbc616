"""A random-moment kill campaign on real `python -m micromegas write_perfetto` processes.

    python python/tools/kill_campaign.py WORKDIR [--runs N] [--seed S] [--only KIND,...]

Not a test (`make test` does not run it): it takes minutes and its moments are random. Each
run starts the real command line and disrupts it once, at a moment drawn uniformly over the
run's whole life (measured beforehand for each source, plus 20% for the exit): SIGKILL,
SIGTERM, SIGINT or SIGHUP to the command line, a reader of `--filename -` that closes the
pipe after a random number of bytes, or SIGKILL to the FlightSQL fixture server it reads
from. Targets: a new file, an existing file (its old bytes must survive unless the new trace
is complete), a symlink to an existing file in another folder, and a folder with other files
in it; sources: a big lake (about 1 s a run), a small lake, the FlightSQL fixture server
(client-side and --server-side).

After each run it checks: the target is absent or its old bytes, or exactly the reference
trace (traces are deterministic: the reference is validated once with `validate`, every
complete output is compared with it byte for byte); no other file appeared or changed in
the folders (the documented window, a hidden `.NAME.*.tmp` left by a SIGKILL between the
link and the rename over an existing file, is counted apart); for SIGINT/SIGTERM/SIGHUP,
exit 128 + signal and one line on stderr without "Traceback" that agrees with the file
(or exit 0 when the run had finished; or the interpreter's own default when the signal came
during Python's start-up, before micromegas/__main__.py's first lines, counted apart as
`startup-default`: exit -signal, or for SIGINT a "Fatal Python error" or KeyboardInterrupt
traceback with no frame of ours). `--max-moment S` draws the moments from [0, S] instead,
to crowd them into start-up and imports. Each anomaly is printed
with its moment: seconds after the start, fraction of the measured run, and what the
process was doing just before the signal (pyarrow loaded or not, an unnamed output file
open, the main thread's system call).

Prints `RUN ...` per run, `ANOMALY ...` per anomaly, and a summary table at the end.
"""
import argparse
import collections
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

PY = sys.executable
CLI = [PY, "-m", "micromegas"]
HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "tests" / "flight_fixture.py"
PID = None  # the main process of the sample lake (set in main)

SYSCALLS = {0: "read", 1: "write", 3: "close", 7: "poll", 9: "mmap", 11: "munmap", 17: "pread64", 19: "readv",
            20: "writev", 23: "select", 35: "nanosleep", 59: "execve", 61: "wait4", 74: "fsync", 75: "fdatasync",
            82: "rename", 202: "futex", 228: "clock_gettime", 230: "clock_nanosleep", 232: "epoll_wait",
            257: "openat", 262: "newfstatat", 265: "linkat", 270: "pselect6", 271: "ppoll", 277: "sync_file_range",
            281: "epoll_pwait", 316: "renameat2", 87: "unlink", 263: "unlinkat", 231: "exit_group", 60: "exit",
            4: "stat", 5: "fstat", 6: "lstat", 8: "lseek", 10: "mprotect", 12: "brk", 13: "rt_sigaction",
            14: "rt_sigprocmask", 16: "ioctl", 21: "access", 72: "fcntl", 78: "getdents", 217: "getdents64",
            89: "readlink", 267: "readlinkat", 318: "getrandom", 334: "rseq", 435: "clone3", 56: "clone",
            41: "socket", 42: "connect", 44: "sendto", 45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 288: "accept4",
            293: "pipe2", 302: "prlimit64", 157: "prctl", 218: "set_tid_address", 273: "set_robust_list",
            2: "open"}


def sha(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(8 << 20)
            if not block:
                return h.hexdigest()
            h.update(block)


def snapshot(folder: Path) -> dict:
    """name -> (kind, size, sha or link target) for everything in `folder` (not recursive)."""
    out = {}
    for entry in os.scandir(folder):
        st = entry.stat(follow_symlinks=False)
        if entry.is_symlink():
            out[entry.name] = ("link", 0, os.readlink(entry.path))
        elif entry.is_dir(follow_symlinks=False):
            out[entry.name] = ("dir", 0, "")
        else:
            out[entry.name] = ("file", st.st_size, (st.st_ino, st.st_mtime_ns))
    return out


def doing(pid: int) -> str:
    """What process `pid` is doing, cheaply, from /proc: phase and the main thread's system call."""
    parts = []
    try:
        with open(f"/proc/{pid}/maps") as f:
            maps = f.read()
        parts.append("arrow" if "libarrow" in maps else ("pmm" if "perfetto_mm" in maps else "bare"))
        if "perfetto_mm" in maps:
            parts.append("lib")
    except OSError:
        return "gone"
    try:
        fds = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if "kills-" in target and "(deleted)" in target:
                fds.append("tmpfile")
            elif ".tmp" in target:
                fds.append("namedtmp")
        parts.extend(sorted(set(fds)))
        with open(f"/proc/{pid}/syscall") as f:
            call = f.read().split()
        if call and call[0].isdigit():
            parts.append(SYSCALLS.get(int(call[0]), "sys" + call[0]))
        elif call:
            parts.append(call[0])
        with open(f"/proc/{pid}/status") as f:
            threads = [line.split()[1] for line in f if line.startswith("Threads:")]
        parts.append("t" + (threads[0] if threads else "?"))
    except OSError:
        parts.append("gone")
    return ",".join(parts)


class Server:
    """The FlightSQL fixture in its own process."""

    def __init__(self, lake: Path):
        self.proc = subprocess.Popen([PY, str(FIXTURE), str(lake), "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if " at grpc://" not in line:
            raise RuntimeError(f"fixture did not start: {line!r}")
        self.uri = line.rsplit(" at ", 1)[1].split()[0]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Campaign:
    def __init__(self, work: Path, seed: int):
        self.work = work
        self.rng = random.Random(seed)
        self.anomalies = []
        self.counts = collections.Counter()
        self.outcomes = collections.defaultdict(collections.Counter)
        self.refs = {}  # source -> (sha, size)
        self.durations = {}
        self.server = None
        self.n = 0
        self.max_moment = None  # --max-moment: draw the moments from [0, this] instead

    # -- sources ---------------------------------------------------------------------------
    def source_args(self, source: str, server=None):
        if source == "lake-big":
            return ["--lake", str(self.work / "big")]
        if source == "lake-small":
            return ["--lake", str(self.work / "small")]
        uri = (server or self.ensure_server()).uri
        return ["--uri", uri] + (["--server-side"] if source == "flight-server-side" else [])

    def ensure_server(self) -> Server:
        if self.server is None or not self.server.alive():
            if self.server is not None:
                self.server.kill()
            self.server = Server(self.work / "small")
        return self.server

    def command(self, source, filename, server=None):
        return [*CLI, "write_perfetto", PID, *self.source_args(source, server), "--filename", str(filename), "--quiet"]

    def reference(self, source: str):
        ref = self.work / f"ref-{source}.perfetto"
        times = []
        for _ in range(3):
            started = time.monotonic()
            subprocess.run(self.command(source, ref), check=True)
            times.append(time.monotonic() - started)
        check = subprocess.run([*CLI, "validate", str(ref)], capture_output=True, text=True)
        # The server's generation is micromegas' layout, whose overlapping async slices the
        # validator reports (exit 1); it must still read as a trace (not exit 2).
        if check.returncode != 0 and not (source == "flight-server-side" and check.returncode == 1):
            raise RuntimeError(f"the reference of {source} does not validate: {check.stdout}{check.stderr}")
        self.refs[source] = (sha(ref), ref.stat().st_size)
        self.durations[source] = sorted(times)[1]
        print(f"REFERENCE {source} {self.refs[source][1]} bytes, run {self.durations[source]:.2f} s "
              f"({', '.join(f'{t:.2f}' for t in times)}): {check.stdout.strip()}", flush=True)

    # -- one run -----------------------------------------------------------------------------
    def anomaly(self, record, what):
        record = dict(record, anomaly=what)
        self.anomalies.append(record)
        print("ANOMALY " + json.dumps(record), flush=True)

    def run(self, source: str, target: str, disruption: str):
        self.n += 1
        run_dir = self.work / "runs" / f"{self.n:04d}"
        out = run_dir / "out"
        out.mkdir(parents=True)
        real = run_dir / "real"
        old = None
        name = out / "t.perfetto"
        if target == "existing":
            old = os.urandom(self.rng.randint(1, 4096))
            name.write_bytes(old)
        elif target == "crowded":
            for i in range(self.rng.randint(1, 6)):
                (out / f"other{i}.perfetto").write_bytes(os.urandom(100 + i))
            (out / ".hidden.perfetto.abc123.tmp").write_bytes(b"someone else's")
            (out / "sub").mkdir()
            if self.rng.random() < 0.5:
                old = os.urandom(self.rng.randint(1, 4096))
                name.write_bytes(old)
        elif target == "symlink":
            real.mkdir()
            if self.rng.random() < 0.7:
                old = os.urandom(self.rng.randint(1, 4096))
                (real / "t.perfetto").write_bytes(old)
            os.symlink("../real/t.perfetto", name)
        folders = [out] + ([real] if target == "symlink" else [])
        before = {str(f): snapshot(f) for f in folders}
        ref_sha, ref_size = self.refs[source]
        duration = self.durations[source]
        moment = self.rng.uniform(0.0, self.max_moment or duration * 1.2)
        server = None
        if disruption == "server-kill":
            server = Server(self.work / "small")  # its own, killed during the run
        stdout_mode = target == "stdout"
        filename = "-" if stdout_mode else name
        record = {"run": self.n, "source": source, "target": target, "disruption": disruption,
                  "planned": round(moment, 4), "of": round(duration, 3)}
        cmd = self.command(source, filename, server)
        stdout = subprocess.PIPE if stdout_mode else subprocess.DEVNULL
        started = time.monotonic()
        child = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, cwd=run_dir)
        import threading
        hung = []

        def stuck():
            hung.append(time.monotonic() - started)
            child.kill()
        guard = threading.Timer(120, stuck)
        guard.start()
        received = hashlib.sha256()
        received_size = 0
        what = ""
        sent_at = None
        if disruption == "pipe-close":
            limit = self.rng.randint(0, ref_size + ref_size // 10)
            record["close_after_bytes"] = limit
            while received_size < limit:
                block = child.stdout.read1(min(1 << 20, limit - received_size)) if limit - received_size else b""
                if not block:
                    break
                received.update(block)
                received_size += len(block)
            sent_at = time.monotonic() - started
            what = doing(child.pid)
            child.stdout.close()
            _, err = child.communicate(timeout=120)
        else:
            # The reader (stdout runs) reads everything in a thread while the signal waits.
            reader = None
            if stdout_mode:
                def read_all():
                    nonlocal received_size
                    while True:
                        block = child.stdout.read1(1 << 20)
                        if not block:
                            return
                        received.update(block)
                        received_size += len(block)
                reader = threading.Thread(target=read_all, daemon=True)
                reader.start()
            delay = started + moment - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            what = doing(child.pid) if disruption != "server-kill" else doing(server.proc.pid)
            sent_at = time.monotonic() - started
            if disruption == "server-kill":
                server.kill()
            else:
                child.send_signal(getattr(signal, disruption))
            err = child.stderr.read()
            child.wait(timeout=120)
            if reader is not None:
                reader.join(60)
        guard.cancel()
        if server is not None:
            server.kill()
        rc = child.returncode
        if hung:
            record["hung"] = round(hung[0], 1)
        elapsed = time.monotonic() - started
        err = err.decode(errors="replace")
        lines = err.strip().splitlines()
        record.update(sent=round(sent_at, 4), fraction=round(sent_at / duration, 3), doing=what, rc=rc,
                      elapsed=round(elapsed, 3), stderr=err.strip()[:300])

        # -- the file ----------------------------------------------------------------------
        file_state = "n/a"
        problems = ["hung: killed after 120 s"] if hung else []
        if not stdout_mode:
            final = real / "t.perfetto" if target == "symlink" else name
            if target == "symlink" and (not name.is_symlink() or os.readlink(name) != "../real/t.perfetto"):
                problems.append("the symlink was replaced or changed")
            if not final.exists():
                file_state = "absent" if old is None else "old-gone"
            else:
                size = final.stat().st_size
                data_is_old = old is not None and size == len(old) and final.read_bytes() == old
                if data_is_old:
                    file_state = "old"
                elif size == ref_size and sha(final) == ref_sha:
                    file_state = "complete"
                else:
                    file_state = f"partial({size})"
            if file_state in ("old-gone",) or file_state.startswith("partial"):
                problems.append(f"target {file_state}")
            # Leftovers: compare each folder with before (the target's own name excepted).
            for folder in folders:
                now = snapshot(folder)
                was = before[str(folder)]
                for entry, value in now.items():
                    if entry == "t.perfetto":
                        continue
                    if entry not in was:
                        documented = (disruption == "SIGKILL" and old is not None and entry.startswith(".t.perfetto.")
                                      and entry.endswith(".tmp") and file_state == "old")
                        if documented:
                            complete = (folder / entry).stat().st_size == ref_size and sha(folder / entry) == ref_sha
                            self.counts["documented-window"] += 1
                            record["documented_window"] = entry + (" (complete trace)" if complete else " (NOT complete)")
                            if not complete:
                                problems.append(f"hidden temporary {entry} is not the complete trace")
                        else:
                            problems.append(f"leftover {folder.name}/{entry} ({value[1]} bytes)")
                    elif value != was[entry]:
                        problems.append(f"{folder.name}/{entry} changed")
                for entry in was:
                    if entry not in now and entry != "t.perfetto":
                        problems.append(f"{folder.name}/{entry} disappeared")
        else:
            digest = received.hexdigest()
            if received_size == ref_size and digest == ref_sha:
                file_state = "stdout-complete"
            elif received_size > ref_size:
                file_state = f"stdout-too-long({received_size})"
                problems.append(file_state)
            else:
                file_state = f"stdout-prefix({received_size})"
            if sorted(p.name for p in run_dir.iterdir()) != ["out"] or list(out.iterdir()):
                problems.append(f"leftover in cwd: {sorted(str(p) for p in run_dir.rglob('*'))}")
        record["file"] = file_state
        complete = file_state in ("complete", "stdout-complete")

        # -- exit status and stderr ---------------------------------------------------------
        outcome = ""
        frames = [line for line in err.splitlines() if line.lstrip().startswith('File "')]
        # Python's own start-up (site, its .pth files, the standard streams): no frame of ours.
        interpreters_own = disruption == "SIGINT" and not any("micromegas" in line for line in frames)
        if "Traceback" in err and not interpreters_own:  # a frame of ours: after our handlers should be in
            problems.append("traceback on stderr")
        if disruption in ("SIGINT", "SIGTERM", "SIGHUP"):
            signum = getattr(signal, disruption)
            named = "" if disruption == "SIGINT" else f" by {disruption}"
            if rc == 128 + signum:
                outcome = "interrupted"
                if len(lines) != 1:
                    problems.append(f"{len(lines)} lines on stderr")
                elif complete and not stdout_mode:
                    want = f"interrupted{named} after {real / 't.perfetto' if target == 'symlink' else name} was written"
                    if lines[0] != want:
                        problems.append(f"line {lines[0]!r} for a complete file (want {want!r})")
                    outcome = "interrupted-after-written"
                elif complete and stdout_mode:
                    # the signal after the whole trace went out, or while the last bytes did
                    if lines[0] not in (f"interrupted{named} after the whole trace was written to standard output",
                                        f"interrupted{named}: the trace on standard output is incomplete"):
                        problems.append(f"line {lines[0]!r} for a whole trace on standard output")
                    outcome = "interrupted-after-written"
                elif stdout_mode:
                    if lines[0] not in (f"interrupted{named}: nothing written",
                                        f"interrupted{named}: the trace on standard output is incomplete"):
                        problems.append(f"line {lines[0]!r}")
                elif lines[0] != f"interrupted{named}: nothing written":
                    problems.append(f"line {lines[0]!r}")
            elif rc == 0:
                outcome = "finished-first"
                if not complete:
                    problems.append("exit 0 without a complete trace")
                if lines:
                    problems.append("exit 0 with stderr")
            elif rc == -signum or (signum == signal.SIGINT and rc in (1, -signum) and interpreters_own
                                   and ("Fatal Python error" in err or err.rstrip().endswith("KeyboardInterrupt"))):
                outcome = "startup-default"  # the interpreter's default, before the entry point ran
                if file_state not in ("absent", "old", "n/a") and not file_state.startswith("stdout-prefix"):
                    problems.append("startup-default with a trace")
                print("NOTE startup-default " + json.dumps(record), flush=True)
                self.counts[f"startup-default {disruption}"] += 1
            else:
                problems.append(f"exit {rc}")
        elif disruption == "SIGKILL":
            outcome = "killed" if rc == -9 else ("finished-first" if rc == 0 else f"exit {rc}")
            if rc not in (-9, 0):
                problems.append(f"exit {rc}")
            if rc == 0 and not complete:
                problems.append("exit 0 without a complete trace")
        elif disruption == "pipe-close":
            if rc == 0:
                outcome = "finished-first"
                if not complete:
                    problems.append("exit 0 without the whole trace read")
            elif rc == 1:
                outcome = "broken-pipe"
                if lines != ["error: broken pipe writing standard output"]:
                    problems.append(f"stderr {lines!r}")
            else:
                problems.append(f"exit {rc}")
        elif disruption == "server-kill":
            if rc == 0:
                outcome = "finished-first"
                if not complete:
                    problems.append("exit 0 without a complete trace")
            elif rc in (1, 2):
                outcome = f"failed-{rc}"
                if len(lines) != 1:
                    problems.append(f"{len(lines)} lines on stderr")
                if complete and not stdout_mode:
                    problems.append(f"exit {rc} but the trace is in place")
            else:
                problems.append(f"exit {rc}")
        record["outcome"] = outcome
        key = f"{source}/{target}/{disruption}"
        self.outcomes[key][f"{outcome}:{file_state.split('(')[0]}"] += 1
        print("RUN " + json.dumps(record), flush=True)
        for problem in problems:
            self.anomaly(record, problem)
        if not problems:
            shutil.rmtree(run_dir, ignore_errors=True)  # kept otherwise, to look at


def main():
    global PID
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # children start from the defaults (see conftest)
        signal.signal(getattr(signal, name), signal.SIG_DFL if name != "SIGINT" else signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sources", default="lake-big,lake-small,flight-client-side,flight-server-side")
    parser.add_argument("--max-moment", type=float, help="draw moments from [0, SECONDS] (start-up, imports)")
    parser.add_argument("--big", default="12,500000,300000", help="threads,spans-per-thread,async-spans")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    sources = args.sources.split(",")
    threads, spans, asyncs = args.big.split(",")
    for lake, options in (("small", ["--threads", "4", "--spans-per-thread", "100000", "--async-spans", "20000"]),
                          ("big", ["--threads", threads, "--spans-per-thread", spans, "--async-spans", asyncs])):
        if not (work / lake / "processes.parquet").exists() and (lake == "small" or "lake-big" in sources):
            shutil.rmtree(work / lake, ignore_errors=True)
            subprocess.run([*CLI, "sample-lake", str(work / lake), "--quiet", *options], check=True)
    PID = subprocess.run([*CLI, "list-processes", "--lake", str(work / "small"), "--ids"], capture_output=True,
                         text=True, check=True).stdout.split()[0]
    campaign = Campaign(work, args.seed)
    campaign.max_moment = args.max_moment
    shutil.rmtree(work / "runs", ignore_errors=True)
    for source in sources:
        campaign.reference(source)
    plan = []
    for source in sources:
        for target in ("new", "existing", "symlink", "crowded", "stdout"):
            for disruption in ("SIGKILL", "SIGTERM", "SIGINT", "SIGHUP"):
                plan.append((source, target, disruption))
            if target == "stdout":
                plan.append((source, target, "pipe-close"))
        if source.startswith("flight"):
            for target in ("new", "existing"):
                plan.append((source, target, "server-kill"))
    # After one pass over the plan, random picks; the server-side source (several seconds a
    # run, nearly all of it waiting for the server) less often.
    light = [p for p in plan if p[0] != "flight-server-side"] or plan
    started = time.monotonic()
    try:
        for i in range(args.runs):
            if i < len(plan):
                campaign.run(*plan[i])
            else:
                campaign.run(*campaign.rng.choice(plan if campaign.rng.random() < 0.1 else light))
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        if campaign.server is not None:
            campaign.server.kill()
    print(f"\nSUMMARY {campaign.n} runs in {time.monotonic() - started:.0f} s, {len(campaign.anomalies)} anomalies")
    for key in sorted(campaign.outcomes):
        print(f"  {key:45s} " + ", ".join(f"{k} {v}" for k, v in sorted(campaign.outcomes[key].items())))
    campaign.counts.setdefault("documented-window", 0)
    for key, value in sorted(campaign.counts.items()):
        print(f"  {key}: {value}")
    kinds = collections.Counter(a["anomaly"].split("(")[0] for a in campaign.anomalies)
    for kind, count in kinds.most_common():
        print(f"  ANOMALY x{count}: {kind}")


if __name__ == "__main__":
    main()
