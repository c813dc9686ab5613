// scores_select: the k-th smallest of an array by quickselect (Hoare partition around the
// middle element), reordering the array; generated for float (the ReAct percentile over every
// train activation) and double (KNN distances). Internal to common/ood.
#ifndef DIFFOOD_SCORES_SELECT_H
#define DIFFOOD_SCORES_SELECT_H

#include <stdint.h>

#define OSCORE_SELECT_DEFINE(name, type)                                                           \
    static inline type name(type *a, int64_t n, int64_t k) {                                       \
        int64_t lo = 0, hi = n - 1;                                                                \
        while (lo < hi) {                                                                          \
            type p = a[lo + (hi - lo) / 2];                                                        \
            int64_t i = lo, j = hi;                                                                \
            while (i <= j) {                                                                       \
                while (a[i] < p) i++;                                                              \
                while (a[j] > p) j--;                                                              \
                if (i <= j) {                                                                      \
                    type t = a[i];                                                                 \
                    a[i++] = a[j];                                                                 \
                    a[j--] = t;                                                                    \
                }                                                                                  \
            }                                                                                      \
            if (k <= j)                                                                            \
                hi = j;                                                                            \
            else if (k >= i)                                                                       \
                lo = i;                                                                            \
            else                                                                                   \
                return a[k];                                                                       \
        }                                                                                          \
        return a[k];                                                                               \
    }

OSCORE_SELECT_DEFINE(oscore_select, float)
OSCORE_SELECT_DEFINE(oscore_select_d, double)

#endif
