/* hostile: shared parts of the hostile SUT programs (tests/hostile/hostile_*.c), which
 * tests/test_hostile*.c run under the real replcheck to prove the harness survives
 * implementations that crash, hang, flood, or leave processes behind.
 *
 * Every program takes the same options:
 *   hostile_X --target SUBSTR --work-dir {work_dir} --host {repl_host} --port {repl_port}
 *             [--log {log_path}] [--bytes N] [--count N] [--delay-ms N]
 *             -- WORKER ARGV...
 * In the test whose work directory contains SUBSTR (the runner names work directories
 * after the test id, '/' written '_') it misbehaves; in every other test it execs the
 * well-behaved WORKER (refworker), so one run shows that the harness keeps the other
 * tests' verdicts. Usage errors exit 2; these are test programs, not library code. */
#ifndef HOSTILE_H
#define HOSTILE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hostile_options {
  const char *target;
  const char *work_dir;
  const char *host;
  const char *port;
  const char *log_path;
  long long bytes;  /* size parameter (flood volume, line length, log size) */
  long long count;  /* count parameter (connections, children) */
  int delay_ms;     /* pause before the misbehaviour */
  char **worker_argv; /* after "--" */
} hostile_options_t;

/* Parses argv (defaults: bytes, count and delay as given); exits 2 on a usage error.
 * Then, outside the target test, execs the worker (exits 127 if that fails). */
void hostile_start(int argc, char **argv, hostile_options_t *o, long long default_bytes,
                   long long default_count, int default_delay_ms);

/* Connects to the mock at host:port; returns the socket or exits 1. */
int hostile_connect(const hostile_options_t *o);

/* Connects and sends a modern opening (NAME, REPLICATE, PING), then reads until the
 * mock's SERVER line arrived (bounded: 5 s). Returns the socket. */
int hostile_connect_and_greet(const hostile_options_t *o);

/* Writes all of buf; returns false on a write error (peer gone). SIGPIPE is ignored
 * by hostile_start, so a closed peer is EPIPE, not death. */
bool hostile_write_all(int fd, const void *buf, size_t len);

/* Appends a line to the log file (if --log was given), with a Synapse-like prefix. */
void hostile_log(const hostile_options_t *o, const char *message);

/* Sleeps for ms milliseconds (restarting after signals). */
void hostile_sleep_ms(int ms);

/* Waits until SIGTERM (or SIGINT) arrives, then returns: what a simple worker does
 * after its misbehaviour so it only leaves when the harness stops it. */
void hostile_wait_for_term(void);

#endif
