/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tests/time_scale.h - how many times slower than the reference this guest
 * is: XPMEM_TIME_SCALE, measured at boot by tests/harness/calibrate and
 * exported by guest-init.  Every time limit of every test is multiplied by
 * it (at least 1), so no verdict depends on the host's speed that day.
 * The one place it is read.
 */
#ifndef XPMEM_TESTS_TIME_SCALE_H
#define XPMEM_TESTS_TIME_SCALE_H

#include <stdlib.h>

static inline double xpmem_time_scale(void)
{
	const char *s = getenv("XPMEM_TIME_SCALE");
	double v = s ? atof(s) : 1.0;

	return v >= 1.0 ? v : 1.0;
}

#endif
