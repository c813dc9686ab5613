// threads: how many CPU threads a program computes with by default, and how its OpenMP threads
// wait, so that a shared machine (a laptop, a CI runner, a node with other jobs) slows us down
// by its share of the cores and no more.
//
// * thr_available(): the CPUs this process may actually use: the affinity mask (taskset,
//   cpusets, Slurm's binding), capped by the cgroup CPU quota (cgroup v2 cpu.max, v1
//   cpu.cfs_quota_us / cfs_period_us; containers with --cpus, systemd CPUQuota=) rounded up.
//   --threads 0 (the default) means this many. It never looks at the current load: the thread
//   count decides the last bits of some results, and the same command must give the same
//   numbers whether the machine is busy or not.
// * thr_wait_policy(argv): libgomp spins up to 300,000 iterations at every barrier by default.
//   When another process holds a core, the spinning thread waits for one that the kernel has
//   descheduled, at each of the ~2,000 parallel regions of a training step (measured: a 5-10x
//   collapse beside one busy process). libgomp reads its wait policy only from the environment
//   at load time, so a program that was started without OMP_WAIT_POLICY and GOMP_SPINCOUNT sets
//   GOMP_SPINCOUNT=THR_SPINCOUNT (bounded spinning, then sleep) and re-executes itself once
//   (/proc/self/exe, same argv and environment otherwise) before doing anything else. A
//   policy the user set is kept; DIFFOOD_OMP_KEEP=1 disables the re-execution; so does running
//   under valgrind (which would not follow the exec), and arguments that are not the process's
//   own command line (cli_parse called by the test runner).
#ifndef DIFFOOD_THREADS_H
#define DIFFOOD_THREADS_H

#include <stdbool.h>

// GOMP_SPINCOUNT set when the user set no wait policy (see above and README "CPU threads").
#define THR_SPINCOUNT "300"
// Set to "1" in the environment of a program that re-executed itself with THR_SPINCOUNT.
#define THR_MARK_ENV "DIFFOOD_OMP_DEFAULTED"

// CPUs this process may use (>= 1): affinity mask capped by the cgroup quota, rounded up.
int thr_available(void);
// The thread count for a --threads value: `requested` when > 0, else thr_available().
int thr_count(int requested);
// Re-executes the program with bounded OpenMP spinning when the user set no wait policy (see
// above). Returns only when it does not re-execute (or the exec failed: then nothing changes).
void thr_wait_policy(char **argv);
// Whether the running program's wait policy is the one thr_wait_policy chose (not the user's):
// tools that start another OpenMP program for comparison (bench-nn --compare) undo it for that
// program with thr_unset_default().
bool thr_policy_defaulted(void);
void thr_unset_default(void);

#endif
