"""Fault drills for every stage that writes (driven by tests/test_drills.c; run from the checkout).

    fault_drills.py BIN DIR kill [SEED]    SIGKILL each stage at seeded random moments, rerun, compare
    fault_drills.py BIN DIR full           a full disk (a 2 MiB tmpfs): clear message, other stores intact
    fault_drills.py BIN DIR writer         a second writer is refused, naming the first; readers are not
    fault_drills.py BIN DIR reader         a reader during writes sees only committed records

Prints what it did; exits 0 when every drill held, 1 with the reason otherwise, 77 when a drill
cannot run here (no permission to mount a tmpfs).
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import time

BIN, DIR, WHAT = sys.argv[1], sys.argv[2], sys.argv[3]
SEED = int(sys.argv[4]) if len(sys.argv) > 4 else 12
F = "/usr/share/datasets/fashion-mnist"
DIGITS = os.path.abspath("data/mnist/package/src/digits")
TINY = ["--config", "tiny", "--threads", "1", "--quiet"]


def fail(msg):
    print("DRILL FAILED: " + msg, flush=True)
    sys.exit(1)


def p(name):
    return os.path.join(DIR, name)


def stage_cmds(tag, outdir=None):
    """The chain of stage commands; outputs carry `tag` and lie in outdir (default DIR); the
    inputs are the reference outputs in DIR."""
    o = lambda n: os.path.join(outdir or DIR, n + tag)
    ing = [BIN + "/ingest", "--quiet", "--pad", "2"]
    idx = ["--format", "idx", "--images", F + "/t10k-images-idx3-ubyte.gz", "--labels",
           F + "/t10k-labels-idx1-ubyte.gz"]
    return [
        ("ingest", o("train.store"), ing + ["--format", "idx", "--images", F + "/train-images-idx3-ubyte.gz",
                                            "--labels", F + "/train-labels-idx1-ubyte.gz", "--limit", "300",
                                            "--batch", "50", "--name", "train", "--out", o("train.store")]),
        ("ingest-id", o("id.store"), ing + idx + ["--limit", "16", "--name", "fashion_mnist", "--out", o("id.store")]),
        ("ingest-ood", o("ood.store"), ing + ["--format", "mnist-json", "--path", DIGITS, "--limit", "16",
                                              "--name", "mnist", "--out", o("ood.store")]),
        ("train-classifier", o("cls.store"), [BIN + "/train", "--model", "classifier", "--data", p("train.store"),
                                              "--out", o("cls.store")] + TINY),
        ("train-diffusion", o("den.store"), [BIN + "/train", "--model", "diffusion", "--data", p("train.store"),
                                             "--val", p("id.store"), "--out", o("den.store"), "--set",
                                             "train_diffusion.steps=6", "--set", "train_diffusion.checkpoint_every=2"]
         + TINY),
        ("sample", o("id.samples"), [BIN + "/sample", "--images", p("id.store"), "--denoiser", p("den.store"),
                                     "--classifier", p("cls.store"), "--out", o("id.samples"),
                                     "--set", "sample.batch=4"] + TINY),
        ("sample-ood", o("ood.samples"), [BIN + "/sample", "--images", p("ood.store"), "--denoiser", p("den.store"),
                                          "--classifier", p("cls.store"), "--out", o("ood.samples"),
                                          "--set", "sample.batch=4"] + TINY),
        ("extract-features", o("id.features"), [BIN + "/extract-features", "--classifier", p("cls.store"),
                                                "--samples", p("id.samples"), "--out", o("id.features"),
                                                "--set", "features.batch=4"] + TINY),
        ("extract-features-ood", o("ood.features"), [BIN + "/extract-features", "--classifier", p("cls.store"),
                                                     "--samples", p("ood.samples"), "--out", o("ood.features"),
                                                     "--set", "features.batch=4"] + TINY),
        ("extract-features-train", o("train.features"), [BIN + "/extract-features", "--classifier", p("cls.store"),
                                                         "--images", p("train.store"), "--out", o("train.features"),
                                                         "--set", "features.batch=16"] + TINY),
        ("score", o("scores.store"), [BIN + "/score", "--id", p("id.features"), "--ood", "mnist=" + p("ood.features"),
                                      "--train", p("train.features"), "--out", o("scores.store")] + TINY),
        ("report", o("report"), [BIN + "/report", "--scores", p("scores.store"), "--out", o("report"),
                                 "--config", "tiny", "--quiet"]),
    ]


def run(cmd, ok=(0,)):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode not in ok:
        fail("%s: exit %d\n%s%s" % (" ".join(cmd), r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
    return r


def same(a, b, name):
    """Records bit-identical (the log holds wall-clock rates), meta keys equal; report: same JSON."""
    if name == "report":
        x, y = open(a + "/report.json").read(), open(b + "/report.json").read()
        if x != y:
            fail("report: report.json differs after kill + rerun")
        return
    r = subprocess.run([BIN + "/dstore", "diff", "--skip", "log", "--no-meta", a, b], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        fail("%s: %s and %s differ after kill + rerun:\n%s" % (name, a, b, r.stdout[-3000:]))
    keys = [run([BIN + "/dstore", "show", s, "meta", "key"]).stdout for s in (a, b)]
    if keys[0] != keys[1]:
        fail("%s: store keys differ: %s" % (name, keys))


def drill_kill():
    rng = random.Random(SEED)
    killed = {n: (o, c) for n, o, c in stage_cmds(".k")}
    for name, out, cmd in stage_cmds(""):  # the reference chain
        t0 = time.time()
        run(cmd)
        dur = time.time() - t0
        kpath, kout = killed[name]
        kills = []
        for k in range(2):  # from scratch: a kill at a random moment of the run, then a rerun to the end
            shutil.rmtree(kpath, ignore_errors=True)
            delay = rng.uniform(0.0, dur)
            proc = subprocess.Popen(kout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            rc = proc.wait()
            kills.append("%.3fs:%s" % (delay, "killed" if rc == -9 else "ended %d" % rc))
            run(kout)
            same(out, kpath, name)
        print("%-24s ref %.2fs, kills %s: same" % (name, dur, ", ".join(kills)), flush=True)
    writer_every_stage()
    full_disk_chain()


def writer_every_stage():
    """Every stage that writes a store refuses an output another process holds (its writer lock
    taken here, as a running stage holds it), naming the store and the holder's pid."""
    import fcntl
    for name, out, cmd in stage_cmds(".w"):
        if name == "report":  # writes files, not a store
            continue
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        with open(os.path.join(out, "writer.lock"), "w") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lk.write("pid %d, fault_drills\n" % os.getpid())
            lk.flush()
            r = run(cmd, ok=(2,))
        if "another process is writing it" not in r.stderr or "pid %d" % os.getpid() not in r.stderr \
                or out not in r.stderr:
            fail("%s: a held output store was not refused by name and pid:\n%s" % (name, r.stderr))
        shutil.rmtree(out)
    print("every stage refuses an output store another process writes", flush=True)


def mount_small(mnt):
    """Mounts a 2 MiB tmpfs at mnt; False (with a message) when this process may not."""
    os.makedirs(mnt, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        print("SKIP: cannot mount a tmpfs here (%s): the full-disk drill needs root" % r.stderr.strip())
        return False
    return True


def full_disk_chain():
    """Every writing stage, its output on a full disk: exit 1 saying the disk is full, naming the
    output; the input stores stay intact."""
    mnt = p("tmpfs-chain")
    if not mount_small(mnt):
        return
    try:
        fill = os.path.join(mnt, "fill")
        subprocess.run(["dd", "if=/dev/zero", "of=" + fill, "bs=64k", "count=1000"], capture_output=True)
        os.truncate(fill, os.path.getsize(fill) - 12 * 1024)
        said = []
        for name, out, cmd in stage_cmds(".f", mnt):
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            ok = r.returncode == 1 and "disk is full" in r.stderr and out in r.stderr
            if name == "report":  # files, not a store: its own message
                ok = r.returncode == 1 and "disk is full" in r.stderr
            if not ok:
                fail("%s on a full disk: exit %d\n%s" % (name, r.returncode, r.stderr[-2000:]))
            said.append(name)
            shutil.rmtree(out, ignore_errors=True)
        for name, out, cmd in stage_cmds(""):
            if name != "report":
                run([BIN + "/dstore", "verify", out])
        print("full disk, every stage: %s said so; the inputs verify" % ", ".join(said), flush=True)
    finally:
        subprocess.run(["umount", mnt])


def drill_full():
    mnt = p("tmpfs")
    if not mount_small(mnt):
        sys.exit(77)
    try:
        ing = [BIN + "/ingest", "--quiet", "--format", "idx", "--images", F + "/t10k-images-idx3-ubyte.gz",
               "--labels", F + "/t10k-labels-idx1-ubyte.gz", "--pad", "2", "--batch", "100"]
        small = os.path.join(mnt, "small.store")
        run(ing + ["--limit", "300", "--out", small])
        before = run([BIN + "/dstore", "verify", small]).stdout
        big = os.path.join(mnt, "big.store")
        r = run(ing + ["--out", big], ok=(1,))
        if "disk is full" not in r.stderr or big not in r.stderr:
            fail("full disk: the message does not say the disk is full naming %s:\n%s" % (big, r.stderr))
        # the other store is intact, the full one holds its committed records
        if run([BIN + "/dstore", "verify", small]).stdout != before:
            fail("full disk: %s changed" % small)
        run([BIN + "/dstore", "verify", big])
        os.makedirs(p("ref"), exist_ok=True)
        run(ing + ["--out", p("ref/big.store")])
        subprocess.run(["mount", "-o", "remount,size=16m", mnt], check=True)
        r = run(ing + ["--out", big])  # after freeing space: resumes and completes
        same(p("ref/big.store"), big, "ingest after a full disk")
        # train's checkpoint on a full disk: fill it, leaving 40 KiB
        shutil.rmtree(big)
        fill = os.path.join(mnt, "fill")
        subprocess.run(["dd", "if=/dev/zero", "of=" + fill, "bs=64k", "count=1000"], capture_output=True)
        os.truncate(fill, os.path.getsize(fill) - 40 * 1024)
        tr = [BIN + "/train", "--model", "classifier", "--data", small, "--out", os.path.join(mnt, "c.store")]
        r = run(tr + TINY, ok=(1,))
        if "disk is full" not in r.stderr:
            fail("train on a full disk: no 'disk is full' message:\n%s" % r.stderr)
        run([BIN + "/dstore", "verify", small])
        print("full disk: message names the store; other store intact; rerun after freeing space completes; "
              "train: " + r.stderr.strip().split("\n")[-1][:200])
    finally:
        subprocess.run(["umount", mnt])


def drill_writer():
    F2 = F + "/train-images-idx3-ubyte.gz"
    ing = [BIN + "/ingest", "--format", "idx", "--images", F2, "--labels", F + "/train-labels-idx1-ubyte.gz",
           "--batch", "20", "--limit", "20000", "--out", p("w.store")]
    first = subprocess.Popen(ing + ["--pad", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(500):  # until it holds the store
        if os.path.exists(p("w.store/data.mdb")):
            break
        time.sleep(0.01)
    r = run(ing + ["--pad", "3", "--force"], ok=(2,))
    want = "pid %d" % first.pid
    if "another process is writing it" not in r.stderr or want not in r.stderr or p("w.store") not in r.stderr:
        fail("second writer: message does not name the store and %s:\n%s" % (want, r.stderr))
    run([BIN + "/dstore", "ls", p("w.store")])  # a reader is not blocked
    # dstore's writing commands are refused too
    run([sys.executable, "-c", "import numpy as np; np.save('%s', np.zeros((3, 4), np.float32))" % p("x.npy")])
    run([BIN + "/dstore", "import", p("x.store"), "x", "--npy", p("x.npy")])
    r2 = run([BIN + "/dstore", "import", p("w.store"), "x", "--npy", p("x.npy")], ok=(2,))
    r3 = run([BIN + "/dstore", "merge", p("w.store"), p("x.store")], ok=(2,))
    for r_ in (r2, r3):
        if "another process is writing it" not in r_.stderr:
            fail("dstore import/merge into a store being written: " + r_.stderr)
    if first.wait() != 0:
        fail("the first writer failed: " + first.stderr.read())
    run([BIN + "/dstore", "verify", p("w.store")])
    # train holds its checkpoint store for the whole run
    shutil.rmtree(p("w.store"))
    run([BIN + "/ingest", "--format", "idx", "--images", F2, "--labels", F + "/train-labels-idx1-ubyte.gz",
         "--pad", "2", "--limit", "300", "--out", p("t.store")])
    tr = [BIN + "/train", "--model", "diffusion", "--data", p("t.store"), "--val", p("t.store"), "--out",
          p("den.store"), "--set", "train_diffusion.steps=100000"] + TINY
    first = subprocess.Popen(tr, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(1000):
        if os.path.exists(p("den.store/data.mdb")):
            break
        time.sleep(0.01)
    r4 = run(tr + ["--force"], ok=(2,))
    first.kill()
    first.wait()
    if "pid %d" % first.pid not in r4.stderr:
        fail("a second train into the same checkpoint store: " + r4.stderr)
    print("second writer refused (%s); reader not blocked" % r.stderr.strip().split("\n")[-1][:160])


def drill_reader():
    ing = [BIN + "/ingest", "--format", "idx", "--images", F + "/train-images-idx3-ubyte.gz", "--labels",
           F + "/train-labels-idx1-ubyte.gz", "--pad", "2", "--batch", "500", "--limit", "20000", "--out",
           p("r.store")]
    w = subprocess.Popen(ing, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = set()
    while w.poll() is None:
        r = subprocess.run([BIN + "/dstore", "ls", p("r.store"), "--json"], capture_output=True, text=True)
        if r.returncode == 0 and '"image"' in r.stdout:
            import json
            t = {x["name"]: x["records"] for x in json.loads(r.stdout)["tables"]}
            n = t.get("image", 0)
            if n % 500 != 0 or t.get("label", 0) != n:
                fail("a reader saw %s: not whole batches of 500 with labels" % t)
            seen.add(n)
            v = subprocess.run([BIN + "/dstore", "verify", p("r.store")], capture_output=True, text=True)
            if v.returncode != 0:
                fail("verify during writes: exit %d\n%s%s" % (v.returncode, v.stdout, v.stderr))
    if w.returncode != 0:
        fail("the writer failed")
    print("reader during writes: saw %d snapshots, each of whole committed batches" % len(seen))


{"kill": drill_kill, "full": drill_full, "writer": drill_writer, "reader": drill_reader}[WHAT]()
