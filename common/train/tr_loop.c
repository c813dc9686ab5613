// tr_loop: the bookkeeping both training loops share (tr.h): the clock, the per-step meter
// (divergence check, smoothed loss, throughput, log rows, progress line, time budget) and the
// end-of-run figures.
#include <math.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/train/tr.h"

double tr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void tr_meter_begin(tr_meter *m, long step0, long total) {
    m->step0 = step0;
    m->smooth = 0;
    m->budget_spent = 0;
    prog_begin_from("train", (uint64_t)step0, (uint64_t)total);
}

int tr_meter_step(tr_meter *m, long step, float loss, double lr, float gnorm, int *budget) {
    ERR_IF(!isfinite(loss), ERR_INTERNAL, "%s: the loss is %g at step %ld (diverged; lower %s.lr)", m->out_path,
           (double)loss, step - 1, m->section);
    m->smooth = step == m->step0 + 1 ? loss : 0.98 * m->smooth + 0.02 * loss;
    double el = tr_now() - m->t0, ips = (double)(step - m->step0) * m->batch / (el > 0 ? el : 1e-9);
    if (m->log_every > 0 && step % m->log_every == 0) {
        float row[TR_LOG_WIDTH] = {(float)step, loss, (float)lr, gnorm, (float)ips};
        ERR_TRY(tr_log_add(m->log, row));
        prog_update((uint64_t)step, "loss %.*f lr %.2e |g| %.2f %.0f img/s", m->loss_digits, m->smooth, lr,
                    (double)gnorm, ips);
    }
    *budget = m->budget_spent = m->minutes > 0 && el >= m->minutes * 60.0;
    return 0;
}

void tr_meter_end(tr_meter *m, long step, long steps, tr_result *res) {
    if (m->budget_spent)
        log_info("%s: the %.1f-minute budget is spent at step %ld: checkpoint kept, rerun to continue", m->out_path,
                 m->minutes, step);
    prog_update((uint64_t)step, NULL);
    prog_end();
    res->step = step;
    res->steps = steps;
    res->complete = step >= steps;
    res->loss = m->smooth;
    res->seconds = tr_now() - m->t0;
    res->images_per_s = res->seconds > 0 ? (double)(step - m->step0) * m->batch / res->seconds : 0;
}
