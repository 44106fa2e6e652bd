/* ledger: every event on every replication connection, in order.
 *
 * The mock homeserver appends one entry per connection opened, per line each way and
 * per close (who closed and how); tests and evidence read it. Entries are numbered by
 * a sequence that never repeats, so a test can wait for "the next matching entry after
 * seq N". The ledger keeps at most `capacity` entries and at most a byte budget
 * (ledger_set_max_bytes; entry bookkeeping plus text): older entries are dropped
 * (their count is kept), so a SUT that floods the mock or a long soak costs bounded
 * memory. The newest entry is always kept, whatever its size. A drop hook sees each
 * entry just before it is dropped, so checks over every line (passive requirements)
 * stay complete however much is dropped.
 *
 * Entries' text is copied into shared chunks (text_fifo.h), not one allocation each:
 * the mock records every line it writes, and per-line allocations were most of that.
 *
 * Ownership: the ledger owns entries and their text; pointers returned by
 * ledger_get()/ledger_append() stay valid until that entry is dropped or the ledger
 * is destroyed (entries never move). Single-threaded (the mock's event loop thread). */
#ifndef LEDGER_H
#define LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ledger_kind {
  LEDGER_OPEN = 1, /* a connection was accepted; text = peer address */
  LEDGER_LINE,     /* a line, without its LF; side = who wrote it */
  LEDGER_CLOSE,    /* the connection ended; side = who closed it, how = FIN/RST/... */
  LEDGER_NOTE,     /* anything else worth showing in evidence (text) */
  LEDGER_HTTP,     /* an HTTP request the SUT made to the mock: "GET /path?query" */
} ledger_kind_t;

typedef enum ledger_side {
  LEDGER_SIDE_MOCK = 1, /* the mock homeserver (main process) */
  LEDGER_SIDE_SUT = 2,  /* the implementation under test (worker) */
} ledger_side_t;

typedef enum ledger_close_how {
  LEDGER_CLOSE_NONE = 0,
  LEDGER_CLOSE_FIN,     /* orderly close: EOF seen / we shut down after flushing */
  LEDGER_CLOSE_RST,     /* reset (ECONNRESET, or we closed with SO_LINGER 0) */
  LEDGER_CLOSE_TIMEOUT, /* we closed because the peer went silent */
  LEDGER_CLOSE_ERROR,   /* another socket error; text says which */
} ledger_close_how_t;

typedef struct ledger_entry {
  uint64_t seq;
  int conn_id;            /* 1, 2, ... per accepted connection; 0 for run-level notes */
  ledger_kind_t kind;
  ledger_side_t side;
  ledger_close_how_t how; /* LEDGER_CLOSE only */
  bool partial;           /* LEDGER_LINE written without a terminating LF */
  int64_t mono_ns;        /* rc_clock_mono_ns() when recorded */
  char *text;             /* NUL-terminated copy (may contain other bytes before the NUL) */
  size_t len;             /* length of text, excluding the NUL */
} ledger_entry_t;

typedef struct ledger ledger_t;

/* capacity 0 means the default (LEDGER_DEFAULT_CAPACITY entries); the byte budget
 * starts at LEDGER_DEFAULT_MAX_BYTES. Returns NULL on allocation failure. */
ledger_t *ledger_create(size_t capacity);
void ledger_destroy(ledger_t *ledger);

#define LEDGER_DEFAULT_CAPACITY 200000u
#define LEDGER_DEFAULT_MAX_BYTES (8u * 1024u * 1024u)

/* Sets the byte budget (0 = LEDGER_DEFAULT_MAX_BYTES); entries over it are dropped
 * oldest first, at once and on later appends. An entry costs its text plus a fixed
 * bookkeeping size (ledger_entry_cost). */
void ledger_set_max_bytes(ledger_t *ledger, size_t max_bytes);
/* What one entry of `len` text bytes counts against the budget. */
size_t ledger_entry_cost(size_t len);
/* Bytes currently held, as counted against the budget. */
size_t ledger_bytes_held(const ledger_t *ledger);

/* Called with each entry just before it is dropped (not at ledger_destroy). The hook
 * must not append to the ledger. NULL removes it. */
typedef void (*ledger_drop_fn)(const ledger_entry_t *entry, void *arg);
void ledger_set_drop_hook(ledger_t *ledger, ledger_drop_fn hook, void *arg);

/* Appends an entry; text may be NULL (empty). Returns it, or NULL on allocation failure. */
const ledger_entry_t *ledger_append(ledger_t *ledger, int conn_id, ledger_kind_t kind,
                                    ledger_side_t side, ledger_close_how_t how,
                                    const char *text, size_t len);

/* Appends `count` LEDGER_LINE entries at once, all with one timestamp (lines queued
 * in the same call are written at the same instant): line i is bytes[start_i ..
 * ends[i]) where start_0 = 0 and start_i = ends[i-1] + 1 (ends[i] is where line i's LF
 * is). Returns 0, or -1 on allocation failure (the lines before it are appended). */
int ledger_append_lines(ledger_t *ledger, int conn_id, ledger_side_t side, const char *bytes,
                        const size_t *ends, size_t count);

/* Sequence number the next appended entry will get (entries so far = next - 1). */
uint64_t ledger_next_seq(const ledger_t *ledger);
/* Oldest sequence number still held. */
uint64_t ledger_first_seq(const ledger_t *ledger);
/* Entry with that seq, or NULL if not yet appended or already dropped. */
const ledger_entry_t *ledger_get(const ledger_t *ledger, uint64_t seq);
/* Time origin for relative timestamps (creation time). */
int64_t ledger_origin_ns(const ledger_t *ledger);

/* "CLOSE by sut (FIN)" style words. */
const char *ledger_side_name(ledger_side_t side);
const char *ledger_close_how_name(ledger_close_how_t how);

/* Formats one entry as a transcript row, the notation of shared/reference/:
 *   "+   1.234 c1 > SERVER test.local"      mock -> SUT
 *   "+   1.240 c1 < NAME worker1"           SUT -> mock
 *   "+   2.000 c1 --- closed by sut (FIN)"
 * Non-printable bytes are shown as \xNN. Writes a NUL-terminated string into buf
 * (truncated to cap) and returns the length it wanted. */
size_t ledger_format_entry(const ledger_t *ledger, const ledger_entry_t *entry, char *buf,
                           size_t cap);

/* The last max_rows entries (all when 0) as transcript rows joined by LF. Returns a
 * malloc'd string the caller frees (never NULL unless out of memory). */
char *ledger_format_tail(const ledger_t *ledger, size_t max_rows);

#endif
