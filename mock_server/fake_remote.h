/* fake_remote: a fake remote homeserver for the federation sender's presence traffic
 * (requirements.md §9, PR-01..PR-07; seed H).
 *
 * One evhttp listener on 127.0.0.1:0 per remote server name. It records every request
 * it receives (method, path, the transaction id of PUT /_matrix/federation/v1/send/<id>,
 * the body parsed as JSON, and the arrival time on rc_clock's monotonic clock) and
 * answers as configured: 200 {"pdus":{}} (default), another status, after a delay, or
 * not at all by refusing connections. Signatures and auth headers are ignored.
 * Queries give the suite what it needs as evidence: the presence updates for one user
 * in arrival order, counts, and a one-line summary of everything received.
 *
 * Ownership: the caller owns the fake_remote_t and the event_base (which must outlive
 * it); records and the strings they hold belong to the remote until it is destroyed.
 * Everything runs on the thread running the event_base. */
#ifndef FAKE_REMOTE_H
#define FAKE_REMOTE_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc_error.h"

#define FAKE_REMOTE_SEND_PATH "/_matrix/federation/v1/send/"

typedef struct fake_remote fake_remote_t;

/* One request as received. */
typedef struct fake_remote_request {
  char method[16];
  char *path;      /* the request URI as sent (path and query) */
  char *txn_id;    /* the <txnId> of a send path, else NULL */
  json_t *body;    /* parsed JSON body, or NULL when empty or not JSON */
  int64_t mono_ms; /* arrival (rc_clock_mono_ms) */
  int status;      /* what the remote answered (0 while a delayed answer is pending) */
} fake_remote_request_t;

/* One m.presence push entry a remote received. */
typedef struct fake_remote_update {
  const char *user_id;
  const char *presence; /* NULL if the entry had none */
  size_t request;       /* index of the request it came in */
  int64_t mono_ms;
} fake_remote_update_t;

/* Starts listening for server `name`. NULL with err on failure. */
fake_remote_t *fake_remote_create(struct event_base *base, const char *name, rc_error_t *err);
/* Stops listening, drops pending answers and records. NULL is fine. */
void fake_remote_destroy(fake_remote_t *remote);

const char *fake_remote_name(const fake_remote_t *remote);
/* "http://127.0.0.1:<port>", the base URL the SUT is given. */
const char *fake_remote_url(const fake_remote_t *remote);
int fake_remote_port(const fake_remote_t *remote);

/* How later requests are answered: `status` (200 sends {"pdus":{}}, others an error
 * body) after delay_ms (0 = at once). */
void fake_remote_set_reply(fake_remote_t *remote, int status, int delay_ms);
/* true: close the listener, so connections are refused (and connections already open
 * are closed); false: listen again on the same port. -1 with err if that port cannot
 * be bound again. */
int fake_remote_set_refusing(fake_remote_t *remote, bool refusing, rc_error_t *err);

size_t fake_remote_request_count(const fake_remote_t *remote);
/* The i-th request (arrival order); NULL past the end. */
const fake_remote_request_t *fake_remote_request(const fake_remote_t *remote, size_t i);

/* The m.presence push entries of all send transactions so far, in arrival order:
 * returns the number of entries for `user` (NULL: any user) and stores up to cap of
 * them in out (out may be NULL). */
size_t fake_remote_updates(const fake_remote_t *remote, const char *user, fake_remote_update_t *out,
                           size_t cap);

/* Problems with the form of what arrived (first one found), for PR-04: a request that
 * is not PUT on the send path, a body that is not a transaction of `origin`, an EDU
 * that is not m.presence, a push entry without user_id or presence. Writes a
 * description into buf and returns true when there is one. */
bool fake_remote_form_problem(const fake_remote_t *remote, const char *origin, char *buf,
                              size_t cap);

/* "r1.test: 3 requests, 5 updates (@a:x online, @b:x unavailable, ...)" into buf, at
 * most `max_updates` updates listed. Returns buf. */
const char *fake_remote_describe(const fake_remote_t *remote, size_t max_updates, char *buf,
                                 size_t cap);

#endif
