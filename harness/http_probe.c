/* http_probe: libcurl requests to the SUT (see http_probe.h). */
#include "http_probe.h"

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

http_response_t *http_probe(const http_request_t *req, rc_error_t *err) {
  const char *method = req != NULL && req->method != NULL ? req->method : "GET";
  if (req == NULL || req->url == NULL ||
      (strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0)) {
    rc_error_set(err, "%s %s: expected an http:// or https:// URL", method,
                 req != NULL && req->url != NULL ? req->url : "(no URL)");
    return NULL;
  }
  int timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
  http_response_t *r = calloc(1, sizeof *r);
  CURL *curl = curl_easy_init();
  struct curl_slist *extra = NULL;
  bool setup_ok = r != NULL && curl != NULL;
  for (size_t i = 0; setup_ok && req->extra_headers != NULL && req->extra_headers[i] != NULL; i++) {
    struct curl_slist *next = curl_slist_append(extra, req->extra_headers[i]);
    if (next == NULL)
      setup_ok = false;
    else
      extra = next;
  }
  if (!setup_ok) {
    rc_error_set(err, "%s %s: out of memory", method, req->url);
    curl_slist_free_all(extra);
    if (curl != NULL) curl_easy_cleanup(curl);
    free(r);
    return NULL;
  }
  collect_t c = {.response = r,
                 .max_body = req->max_body > 0 ? req->max_body : HTTP_PROBE_DEFAULT_MAX_BODY};
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, req->url);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROXY, ""); /* never through a proxy from the environment */
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &c);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &c);
  if (extra != NULL) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, extra);
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "GET") != 0)
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);

  CURLcode code = curl_easy_perform(curl);
  bool cut_short = code == CURLE_WRITE_ERROR && r->body_truncated && !c.out_of_memory;
  if (code != CURLE_OK && !cut_short) {
    char why[RC_ERROR_MAX / 2];
    long os_errno = 0;
    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
    describe_failure(code, os_errno, errbuf, &c, timeout_ms, why, sizeof why);
    rc_error_set(err, "%s %s: %s", method, req->url, why);
    http_response_destroy(r);
    r = NULL;
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME, &r->seconds);
    if (r->body == NULL) r->body = calloc(1, 1);
    if (r->body == NULL) {
      rc_error_set(err, "%s %s: out of memory", method, req->url);
      http_response_destroy(r);
      r = NULL;
    }
  }
  curl_slist_free_all(extra);
  curl_easy_cleanup(curl);
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
