/* http_probe_internal: one libcurl transfer, shared by http_probe.c (blocking) and
 * http_probe_async.c (on an event loop). Not for use outside those two files. */
#ifndef HTTP_PROBE_INTERNAL_H
#define HTTP_PROBE_INTERNAL_H

#include <curl/curl.h>

#include "http_probe.h"

typedef struct transfer transfer_t;

/* An easy handle set up for req (URL checked, headers, deadline, collectors). NULL with
 * err on a bad URL or no memory. */
transfer_t *transfer_create(const http_request_t *req, rc_error_t *err);
CURL *transfer_handle(transfer_t *x);
/* The response once the transfer ended with `code` (a CURLcode), or NULL with err saying
 * why, as http_probe words it. Call once; the response is then the caller's. */
http_response_t *transfer_finish(transfer_t *x, int code, rc_error_t *err);
void transfer_destroy(transfer_t *x); /* NULL is fine */

#endif
