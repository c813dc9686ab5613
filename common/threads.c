// threads: default thread count from the affinity mask and the cgroup quota; bounded OpenMP
// spinning by re-executing once (see threads.h for why).
#define _GNU_SOURCE
#include "common/threads.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

// The cgroup CPU quota in CPUs (quota / period), or 0 when unlimited or unknown.
static double thr_cgroup_quota(void) {
    char buf[128];
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r"); // cgroup v2: "max 100000" or "150000 100000"
    if (f) {
        double q = 0, p = 0;
        int ok = fgets(buf, sizeof buf, f) && sscanf(buf, "%lf %lf", &q, &p) == 2 && q > 0 && p > 0;
        fclose(f);
        return ok ? q / p : 0;
    }
    double q = 0, p = 0; // cgroup v1: quota -1 = unlimited
    f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r");
    if (!f) f = fopen("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "r");
    if (!f) return 0;
    int ok = fgets(buf, sizeof buf, f) && sscanf(buf, "%lf", &q) == 1 && q > 0;
    fclose(f);
    if (!ok) return 0;
    f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r");
    if (!f) f = fopen("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "r");
    if (!f) return 0;
    ok = fgets(buf, sizeof buf, f) && sscanf(buf, "%lf", &p) == 1 && p > 0;
    fclose(f);
    return ok ? q / p : 0;
}

int thr_available(void) {
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0) n = 1;
    double q = thr_cgroup_quota();
    if (q > 0 && ceil(q) < n) n = (int)ceil(q);
    return n > 0 ? n : 1;
}

int thr_count(int requested) { return requested > 0 ? requested : thr_available(); }

// Whether argv is this process's own command line (/proc/self/cmdline): cli_parse is also called
// with made-up arguments (the test runner), which must never re-execute the process.
static bool thr_argv_is_own(char **argv) {
    FILE *f = fopen("/proc/self/cmdline", "rb");
    if (!f) return false;
    bool same = true;
    for (char **a = argv; *a && same; a++)
        for (const char *c = *a;; c++) {
            int ch = fgetc(f);
            if (ch != (unsigned char)*c) { same = false; break; }
            if (!*c) break;
        }
    same = same && fgetc(f) == EOF;
    fclose(f);
    return same;
}

void thr_wait_policy(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || !argv || !argv[0]) return;
    const char *keep = getenv("DIFFOOD_OMP_KEEP"), *pre = getenv("LD_PRELOAD");
    if ((keep && strcmp(keep, "0")) || (pre && strstr(pre, "vgpreload")) || !thr_argv_is_own(argv)) return;
    if (setenv("GOMP_SPINCOUNT", THR_SPINCOUNT, 1) || setenv(THR_MARK_ENV, "1", 1)) return;
    execv("/proc/self/exe", argv);
    // exec failed (no /proc, say): run on with the policy we have; the environment we changed
    // would mislead children that start after us, so undo it.
    log_debug("could not re-execute with GOMP_SPINCOUNT=%s: %m", THR_SPINCOUNT);
    thr_unset_default();
}

bool thr_policy_defaulted(void) {
    const char *m = getenv(THR_MARK_ENV);
    return m && !strcmp(m, "1");
}

void thr_unset_default(void) {
    if (!thr_policy_defaulted()) return;
    unsetenv("GOMP_SPINCOUNT");
    unsetenv(THR_MARK_ENV);
}
