/* fixture_side: the SUT side channels of fixtures (docs/FIXTURES.md "Metrics and the
 * SUT's HTTP answers"): parsing the steps metric, !metric, metric-mark and sut-http, and
 * judging a metrics scrape or an HTTP answer against one of them.
 *
 * Metric selectors (NAME{label="value",...}) are read by the harness's Prometheus parser
 * (harness/prom.h) as a sample line, so a selector means exactly what the scrape's text
 * would; scrapes and requests are made with harness/http_probe.h. The waiting (deadlines,
 * polls, the mock's loop) is fixture_play.c's.
 *
 * Pure functions over caller data; results are malloc'd where said. */
#ifndef FIXTURE_SIDE_H
#define FIXTURE_SIDE_H

#include <stdbool.h>
#include <stddef.h>

#include "fixture.h"
#include "http_probe.h"
#include "prom.h"

struct parser;

/* Parses one of the steps metric, !metric, metric-mark (kw), sut-http, db or !db with its
 * argument into a new step. Returns 0, or -1 with the parser's error naming file, line
 * and step. */
int fixture_side_parse(struct parser *p, const char *kw, const char *arg, const char *src);

/* The selector as a one-sample prom_t (name and label conditions), or NULL with err
 * ("column 12: expected '=' ..."). Free with prom_destroy. */
prom_t *fixture_selector_parse(const char *selector, rc_error_t *err);

/* The sum of the scrape's samples that the selector matches (its name or the _total
 * twin, with at least its labels); *found gets how many there were. */
double fixture_metric_value(const prom_t *scrape, const prom_t *selector, size_t *found);

/* Whether an answer satisfies a sut-http step's check; what it showed goes into seen
 * ("status 404", "Server: refworker/0.1.0", "no Server header"). vars fill the
 * regex's placeholders. false with seen saying why when the regex cannot be built. */
bool fixture_sut_http_holds(const fixture_step_t *s, const http_response_t *r,
                            const fixture_vars_t *vars, char *seen, size_t cap);

#endif
