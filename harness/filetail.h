/* filetail: bounded reads of files the SUT writes (its log, its output), for evidence
 * and for readiness. Never reads more than a bound into memory, whatever the SUT
 * wrote (a 1 GB log costs the same as a small one). Stateless; thread-safe. */
#ifndef FILETAIL_H
#define FILETAIL_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "rc_error.h"

/* Reads a whole file of at most max_bytes into a NUL-terminated malloc'd string.
 * NULL with err ("<path>: No such file or directory", "<path>: larger than N bytes"). */
char *filetail_read_all(const char *path, size_t max_bytes, rc_error_t *err);

/* The last `lines` lines of a file (at most the last 64 KiB are looked at), as a
 * malloc'd string ending in LF, "" when the file is missing or empty. NUL and other
 * control bytes are shown as \xNN. */
char *filetail_last_lines(const char *path, size_t lines);

/* Reads complete lines after *offset, advancing it past them, and returns true at the
 * first one matching re, copied into match (if non-NULL, NUL-terminated, truncated to
 * cap). A partial last line is left for the next call. Lines longer than 64 KiB are
 * skipped. Missing file: false. */
bool filetail_scan_regex(const char *path, long *offset, const regex_t *re, char *match,
                         size_t cap);

/* Current size of a file (0 if missing): an offset for "lines logged from now on". */
long filetail_size(const char *path);

#endif
