/* rc_clock: monotonic time for deadlines and ledgers; wall time only for report
 * timestamps. Thread-safe, no state. */
#ifndef RC_CLOCK_H
#define RC_CLOCK_H

#include <stdint.h>

/* Nanoseconds on CLOCK_MONOTONIC. */
int64_t rc_clock_mono_ns(void);
/* Milliseconds on CLOCK_MONOTONIC. */
int64_t rc_clock_mono_ms(void);
/* Milliseconds since the Unix epoch (CLOCK_REALTIME), for wire timestamps. */
int64_t rc_clock_wall_ms(void);

#endif
