/* http_probe: libcurl requests to the SUT (see http_probe.h). */
#include "http_probe.h"
#include "http_probe_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_TIMEOUT_MS 5000

typedef struct collect {
  http_response_t *response;
  size_t max_body;
  size_t body_cap;
  bool too_many_headers;
  bool out_of_memory;
} collect_t;

static void headers_clear(http_response_t *r) {
  for (size_t i = 0; i < r->header_count; i++) {
    free(r->headers[i].name);
    free(r->headers[i].value);
  }
  free(r->headers);
  r->headers = NULL;
  r->header_count = 0;
}

/* [start, stop) without leading and trailing blanks and line ends. */
static void trim(const char **start, const char **stop) {
  while (*start < *stop && (**start == ' ' || **start == '\t')) (*start)++;
  while (*stop > *start && strchr(" \t\r\n", (*stop)[-1]) != NULL) (*stop)--;
}

static bool header_append_folded(http_header_t *h, const char *start, const char *stop) {
  size_t old = strlen(h->value), add = (size_t)(stop - start);
  char *grown = realloc(h->value, old + add + 2);
  if (grown == NULL) return false;
  h->value = grown;
  size_t at = old;
  if (old > 0 && add > 0) grown[at++] = ' ';
  memcpy(grown + at, start, add);
  grown[at + add] = '\0';
  return true;
}

/* One header line per call (status lines and the blank line included). */
static size_t on_header(char *data, size_t size, size_t count, void *arg) {
  collect_t *c = arg;
  http_response_t *r = c->response;
  size_t len = size * count;
  const char *start = data, *stop = data + len;
  /* Each status line starts a response (1xx interim ones are followed by the real one);
   * only the final response's headers are kept. */
  if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
    headers_clear(r);
    return len;
  }
  if (len > 0 && (data[0] == ' ' || data[0] == '\t')) {
    trim(&start, &stop);
    if (r->header_count > 0 &&
        !header_append_folded(&r->headers[r->header_count - 1], start, stop)) {
      c->out_of_memory = true;
      return 0;
    }
    return len;
  }
  const char *colon = memchr(data, ':', len);
  if (colon == NULL) return len; /* the blank line ending the headers, or junk */
  if (r->header_count == HTTP_PROBE_MAX_HEADERS) {
    c->too_many_headers = true;
    return 0;
  }
  http_header_t *grown = realloc(r->headers, (r->header_count + 1) * sizeof *grown);
  if (grown == NULL) {
    c->out_of_memory = true;
    return 0;
  }
  r->headers = grown;
  const char *name_start = data, *name_stop = colon, *value_start = colon + 1;
  trim(&name_start, &name_stop);
  trim(&value_start, &stop);
  http_header_t *h = &r->headers[r->header_count];
  h->name = strndup(name_start, (size_t)(name_stop - name_start));
  h->value = strndup(value_start, (size_t)(stop - value_start));
  if (h->name == NULL || h->value == NULL) {
    free(h->name);
    free(h->value);
    c->out_of_memory = true;
    return 0;
  }
  r->header_count++;
  return len;
}

static size_t on_body(char *data, size_t size, size_t count, void *arg) {
  collect_t *c = arg;
  http_response_t *r = c->response;
  size_t len = size * count;
  size_t room = c->max_body - r->body_len;
  size_t take = len < room ? len : room;
  if (r->body_len + take + 1 > c->body_cap) {
    size_t cap = c->body_cap ? c->body_cap : 16384;
    while (cap < r->body_len + take + 1) cap *= 2;
    char *grown = realloc(r->body, cap);
    if (grown == NULL) {
      c->out_of_memory = true;
      return 0;
    }
    r->body = grown;
    c->body_cap = cap;
  }
  memcpy(r->body + r->body_len, data, take);
  r->body_len += take;
  r->body[r->body_len] = '\0';
  if (take < len) {
    /* Stop the transfer: the rest would only be thrown away (and might never end). */
    r->body_truncated = true;
    return 0;
  }
  return len;
}

static void describe_failure(CURLcode code, long os_errno, const char *errbuf, const collect_t *c,
                             int timeout_ms, char *buf, size_t cap) {
  if (c->too_many_headers)
    snprintf(buf, cap, "more than %d response headers", HTTP_PROBE_MAX_HEADERS);
  else if (c->out_of_memory)
    snprintf(buf, cap, "out of memory");
  else if (code == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED)
    snprintf(buf, cap, "connection refused (nothing listens there)");
  else if (code == CURLE_OPERATION_TIMEDOUT)
    snprintf(buf, cap, "no complete response within %d ms (%s)", timeout_ms, errbuf);
  else if (code == CURLE_GOT_NOTHING)
    snprintf(buf, cap, "the server closed the connection without sending a response");
  else
    snprintf(buf, cap, "%s%s%s", curl_easy_strerror(code), errbuf[0] ? ": " : "", errbuf);
}

/* One request being set up, performed and turned into a response: shared by the
 * blocking http_probe and the asynchronous http_probe_start. */
struct transfer {
  char method[32];
  char *url;
  int timeout_ms;
  CURL *curl;
  struct curl_slist *extra;
  collect_t collect;
  char errbuf[CURL_ERROR_SIZE];
};

void transfer_destroy(transfer_t *x) {
  if (x == NULL) return;
  curl_slist_free_all(x->extra);
  if (x->curl != NULL) curl_easy_cleanup(x->curl);
  http_response_destroy(x->collect.response);
  free(x->url);
  free(x);
}

transfer_t *transfer_create(const http_request_t *req, rc_error_t *err) {
  const char *method = req != NULL && req->method != NULL ? req->method : "GET";
  if (req == NULL || req->url == NULL ||
      (strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0)) {
    rc_error_set(err, "%s %s: expected an http:// or https:// URL", method,
                 req != NULL && req->url != NULL ? req->url : "(no URL)");
    return NULL;
  }
  transfer_t *x = calloc(1, sizeof *x);
  bool setup_ok = x != NULL && (x->url = strdup(req->url)) != NULL &&
                  (x->collect.response = calloc(1, sizeof *x->collect.response)) != NULL &&
                  (x->curl = curl_easy_init()) != NULL;
  for (size_t i = 0; setup_ok && req->extra_headers != NULL && req->extra_headers[i] != NULL; i++) {
    struct curl_slist *next = curl_slist_append(x->extra, req->extra_headers[i]);
    if (next == NULL)
      setup_ok = false;
    else
      x->extra = next;
  }
  if (!setup_ok) {
    rc_error_set(err, "%s %s: out of memory", method, req->url);
    transfer_destroy(x);
    return NULL;
  }
  snprintf(x->method, sizeof x->method, "%s", method);
  x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
  x->collect.max_body = req->max_body > 0 ? req->max_body : HTTP_PROBE_DEFAULT_MAX_BODY;
  CURL *curl = x->curl;
  curl_easy_setopt(curl, CURLOPT_URL, x->url);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROXY, ""); /* never through a proxy from the environment */
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)x->timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)x->timeout_ms);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x->collect);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x->collect);
  if (x->extra != NULL) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, x->extra);
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "GET") != 0)
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  return x;
}

CURL *transfer_handle(transfer_t *x) {
  return x->curl;
}

http_response_t *transfer_finish(transfer_t *x, int code_value, rc_error_t *err) {
  CURLcode code = (CURLcode)code_value;
  http_response_t *r = x->collect.response;
  collect_t *c = &x->collect;
  bool cut_short = code == CURLE_WRITE_ERROR && r->body_truncated && !c->out_of_memory;
  if (code != CURLE_OK && !cut_short) {
    char why[RC_ERROR_MAX / 2];
    long os_errno = 0;
    curl_easy_getinfo(x->curl, CURLINFO_OS_ERRNO, &os_errno);
    describe_failure(code, os_errno, x->errbuf, c, x->timeout_ms, why, sizeof why);
    rc_error_set(err, "%s %s: %s", x->method, x->url, why);
    return NULL;
  }
  curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(x->curl, CURLINFO_TOTAL_TIME, &r->seconds);
  if (r->body == NULL) r->body = calloc(1, 1);
  if (r->body == NULL) {
    rc_error_set(err, "%s %s: out of memory", x->method, x->url);
    return NULL;
  }
  x->collect.response = NULL; /* the caller's now */
  return r;
}

http_response_t *http_probe(const http_request_t *req, rc_error_t *err) {
  transfer_t *x = transfer_create(req, err);
  if (x == NULL) return NULL;
  http_response_t *r = transfer_finish(x, curl_easy_perform(x->curl), err);
  transfer_destroy(x);
  return r;
}

void http_response_destroy(http_response_t *response) {
  if (response == NULL) return;
  headers_clear(response);
  free(response->body);
  free(response);
}

size_t http_response_header_count(const http_response_t *response, const char *name) {
  size_t n = 0;
  for (size_t i = 0; response != NULL && name != NULL && i < response->header_count; i++)
    if (strcasecmp(response->headers[i].name, name) == 0) n++;
  return n;
}

const char *http_response_header(const http_response_t *response, const char *name, size_t index) {
  for (size_t i = 0; response != NULL && name != NULL && i < response->header_count; i++) {
    if (strcasecmp(response->headers[i].name, name) != 0) continue;
    if (index-- == 0) return response->headers[i].value;
  }
  return NULL;
}

prom_t *http_probe_metrics(const char *url, int timeout_ms, rc_error_t *err) {
  http_request_t req = {.method = "GET", .url = url, .timeout_ms = timeout_ms};
  http_response_t *r = http_probe(&req, err);
  if (r == NULL) return NULL;
  prom_t *prom = NULL;
  if (r->status != 200) {
    rc_error_set(err, "metrics at %s: HTTP status %ld, expected 200 (body: %.200s)", url, r->status,
                 r->body);
  } else if (r->body_truncated) {
    rc_error_set(err, "metrics at %s: larger than %u bytes", url, HTTP_PROBE_DEFAULT_MAX_BODY);
  } else {
    prom = prom_parse(r->body, r->body_len, err);
    if (prom == NULL) rc_error_prefix(err, "metrics at %s", url);
  }
  http_response_destroy(r);
  return prom;
}
