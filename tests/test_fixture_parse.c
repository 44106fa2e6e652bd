/* The fixture format (docs/FIXTURES.md) without processes: loading a fixture, every
 * load error naming file, line and field or step, placeholders and matchers, the
 * escapes of >raw/<raw, the recorder's ledger-to-fixture writer (its output loads back),
 * and the torture schedule (same seed, same decisions). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "fixture_side.h"
#include "fixture_text.h"
#include "fixture_write.h"
#include "ledger.h"
#include "test_support.h"
#include "torture.h"

#define HEADER                                                \
  "replcheck-fixture: 1\n"                                    \
  "requirements: RD-06\n"                                     \
  "requirement: RDATA at or below the position is dropped.\n" \
  "source: synapse handler.py@v1.66.0\n"                      \
  "dialects: modern\n"

static fixture_t *parse(const char *text, rc_error_t *err) {
  return fixture_parse(text, strlen(text), "fx/t.fixture", err);
}

START_TEST(valid_fixture_loads) {
  const char *text =
      "# a comment\n"
      "replcheck-fixture: 1\n"
      "requirements: RC-05, RD-03\n"
      "level: SHOULD\n"
      "requirement: Batches do not count.\n"
      "source: client.py@v0.33.3\n"
      "dialects: 2018, modern\n"
      "transports: tcp\n"
      "roles: worker\n"
      "needs-paths: /health , /_x/fail\n"
      "needs-caches: device_updates\n"
      "tags: bug,slow\n"
      "mock: scripted\n"
      "ping-interval: 0\n"
      "stream: typing 4\n"
      "stream: events 1\n"
      "ignore: USER_IP ${any}\n"
      "deadline: 3000\n"
      "unexpected: fail\n"
      "\n"
      "script:\n"
      "connect c1\n"
      "  > SERVER ${server_name}   \n"
      "<~ REPLICATE ?\n"
      "unordered\n"
      "  < REPLICATE typing ${int}\n"
      "  c1 <raw REPLICATE events 1\\x20\n"
      "end\n"
      "deadline 500\n"
      "c1 >split 3 RDATA typing 5 [\"$abc\",\"$${not}\"]\n"
      "http GET /x/${word}?a=1\n"
      "!http~ POST .*\n"
      "row typing 5 [1,2]\n"
      "c1 closed by sut fin\n"
      "c2 open\n"
      "terminate\n";
  rc_error_t err;
  fixture_t *f = parse(text, &err);
  ck_assert_msg(f != NULL, "%s", err.msg);
  ck_assert_str_eq(f->requirements, "RC-05,RD-03");
  ck_assert_int_eq(f->level, FIXTURE_LEVEL_SHOULD);
  ck_assert_uint_eq(f->dialects, FIXTURE_DIALECT_2018 | FIXTURE_DIALECT_MODERN);
  ck_assert_uint_eq(f->transports, FIXTURE_TRANSPORT_TCP);
  ck_assert_str_eq(f->tags, "bug,slow");
  ck_assert_str_eq(f->needs_paths, "/health,/_x/fail");
  ck_assert_str_eq(f->needs_caches, "device_updates");
  ck_assert_int_eq(f->mock, FIXTURE_MOCK_SCRIPTED);
  ck_assert_int_eq(f->ping_interval_ms, 0);
  ck_assert_uint_eq(f->stream_count, 2);
  ck_assert_str_eq(f->streams[0].name, "typing");
  ck_assert_int_eq(f->streams[0].position, 4);
  ck_assert(f->unexpected_fail);
  /* USER_IP plus the two default keepalive patterns. */
  ck_assert_uint_eq(f->ignore_count, 3);
  ck_assert_int_eq(f->conn_count, 2);
  ck_assert_uint_eq(f->step_count, 11);
  const fixture_step_t *s = f->steps;
  ck_assert_int_eq(s[0].kind, FIXTURE_STEP_CONNECT);
  ck_assert_int_eq(s[0].line, 22);
  ck_assert_int_eq(s[1].kind, FIXTURE_STEP_SEND);
  ck_assert_str_eq(s[1].text, "SERVER ${server_name}"); /* trailing blanks dropped */
  ck_assert_int_eq(s[1].deadline_ms, 3000);
  ck_assert_int_eq(s[2].use, FIXTURE_TEXT_REGEX);
  ck_assert_int_eq(s[3].kind, FIXTURE_STEP_UNORDERED);
  ck_assert_uint_eq(s[3].child_count, 2);
  ck_assert_int_eq(s[3].children[1].use, FIXTURE_TEXT_RAW);
  ck_assert_int_eq(s[4].number, 3);
  ck_assert_int_eq(s[4].deadline_ms, 500);
  ck_assert_int_eq(s[6].kind, FIXTURE_STEP_HTTP_NOT);
  ck_assert_int_eq(s[7].kind, FIXTURE_STEP_ROW);
  ck_assert_int_eq(s[7].token, 5);
  ck_assert_int_eq(s[8].kind, FIXTURE_STEP_CLOSED);
  ck_assert_int_eq(s[8].by, FIXTURE_BY_SUT);
  ck_assert_int_eq(s[8].how, FIXTURE_HOW_FIN);
  ck_assert_int_eq(s[9].conn, 2);
  ck_assert_int_eq(s[10].kind, FIXTURE_STEP_TERMINATE);
  fixture_destroy(f);
}
END_TEST

/* Every load error says where (file:line) and what (field or step). */
START_TEST(load_errors_name_file_line_and_field) {
  static const struct {
    const char *text;
    const char *message;
  } cases[] = {
      {"", "fx/t.fixture: empty: the first field must be 'replcheck-fixture: 1'"},
      {"replcheck-fixture: 2\n",
       "fx/t.fixture:1: field 'replcheck-fixture': expected format version 1"},
      {"# c\nrequirements: RD-06\n",
       "fx/t.fixture:2: the first field must be 'replcheck-fixture: 1'"},
      {HEADER "level: MAY\nscript:\n< X\n",
       "fx/t.fixture:6: field 'level': expected MUST or SHOULD, got 'MAY'"},
      {HEADER "colour: red\n", "fx/t.fixture:6: unknown field 'colour'"},
      {HEADER "needs-paths: health\n",
       "fx/t.fixture:6: field 'needs-paths': expected URL paths starting with '/', got 'health'"},
      {HEADER "needs-paths: /a b\n",
       "fx/t.fixture:6: field 'needs-paths': expected URL paths starting with '/', got '/a b'"},
      {HEADER "needs-caches: Device\n",
       "fx/t.fixture:6: field 'needs-caches': expected cache names like 'device_updates', got "
       "'Device'"},
      {HEADER "needs-caches: a\nneeds-caches: b\n",
       "fx/t.fixture:7: field 'needs-caches': given twice"},
      {HEADER "source: again\n", "fx/t.fixture:6: field 'source': given twice"},
      {HEADER "requirements: RD06\n", "fx/t.fixture:6: field 'requirements': given twice"},
      {"replcheck-fixture: 1\nrequirements: rd-06\n",
       "fx/t.fixture:2: field 'requirements': expected requirement ids like 'RD-06', got 'rd-06'"},
      {"replcheck-fixture: 1\ndialects: 2019\n",
       "fx/t.fixture:2: field 'dialects': expected 2018 or modern, got '2019'"},
      {HEADER "deadline: 0\n",
       "fx/t.fixture:6: field 'deadline': expected milliseconds in 1..600000"},
      {HEADER "stream: typing\n", "fx/t.fixture:6: field 'stream': expected 'NAME POSITION'"},
      {HEADER "ignore: ${nope}\n", "fx/t.fixture:6: field 'ignore': unknown placeholder '${nope}'"},
      {HEADER "mock: lazy\n", "fx/t.fixture:6: field 'mock': expected main or scripted"},
      {"replcheck-fixture: 1\nrequirement: x\nsource: y\ndialects: modern\nscript:\n< X\n",
       "fx/t.fixture: field 'requirements' is required"},
      {HEADER, "fx/t.fixture: no 'script:' line"},
      {HEADER "script:\nconnect c1\n> PING 1\n", "fx/t.fixture: the script checks nothing"},
      {HEADER "script:\nfrobnicate\n", "fx/t.fixture:7: unknown step 'frobnicate'"},
      {HEADER "script:\n>PING\n", "fx/t.fixture:7: unknown step '>PING'"},
      {HEADER "script:\n> RDATA typing master ${int} []\n",
       "fx/t.fixture:7: step '>': placeholder '${int}' cannot be sent"},
      {HEADER "script:\n< NAME ${bogus}\n",
       "fx/t.fixture:7: step '<': unknown placeholder '${bogus}'"},
      {HEADER "script:\n< NAME ${word\n", "fx/t.fixture:7: step '<': unterminated placeholder"},
      {HEADER "script:\n<~ NAME (\n", "fx/t.fixture:7: step '<~': bad regular expression"},
      {HEADER "script:\n>raw A\\q\n< X\n", "fx/t.fixture:7: step '>raw': unknown escape '\\q'"},
      {HEADER "script:\n>split 0 X\n< X\n", "fx/t.fixture:7: step '>split': K must be"},
      {HEADER "script:\nwait 1s\n< X\n",
       "fx/t.fixture:7: step 'wait': expected milliseconds in 0..600000"},
      {HEADER "script:\nc1 wait 5\n< X\n", "fx/t.fixture:7: step 'wait': takes no connection (cN)"},
      {HEADER "script:\nconnect c2\n", "fx/t.fixture:7: step 'connect': expected 'connect c1'"},
      {HEADER "script:\nc3 < X\n", "fx/t.fixture:7: step '<': connection c3 is used before c1"},
      {HEADER "script:\nunordered\n< X\n",
       "fx/t.fixture:7: the 'unordered' window opened here has no 'end'"},
      {HEADER "script:\nunordered\nend\n",
       "fx/t.fixture:8: step 'end': an 'unordered' window needs at least one line"},
      {HEADER "script:\nend\n",
       "fx/t.fixture:7: step 'end': there is no 'unordered' window to end"},
      {HEADER "script:\nunordered\n> X\n",
       "fx/t.fixture:8: step '>': only '<', '<~' and '<raw' steps"},
      {HEADER "script:\nclosed by nobody\n",
       "fx/t.fixture:7: step 'closed': expected 'by sut' or 'by mock'"},
      {HEADER "script:\nrow typing 5 {nope\n< X\n",
       "fx/t.fixture:7: step 'row': JSON must be one valid JSON value"},
      {HEADER "script:\nhttp-fail 200 1\n< X\n",
       "fx/t.fixture:7: step 'http-fail': expected 'http-fail STATUS COUNT'"},
      {HEADER "script:\nping maybe\n< X\n", "fx/t.fixture:7: step 'ping': expected on or off"},
      {HEADER "script:\n< X\r\n", "fx/t.fixture:7: a carriage return"},
      /* fake federation remotes and the database */
      {HEADER "remotes: r1.example, R2\n",
       "fx/t.fixture:6: field 'remotes': expected server names made of a-z, 0-9, '.', '-' and "
       "':', got 'R2'"},
      {HEADER "remotes: r1.example,r1.example\n",
       "fx/t.fixture:6: field 'remotes': remote 'r1.example' is named twice"},
      {HEADER "remotes: a,b,c,d,e,f,g,h,i\n",
       "fx/t.fixture:6: field 'remotes': at most 8 remotes, got more at 'i'"},
      {HEADER "script:\nremote r1.example http PUT /x\n",
       "fx/t.fixture:7: step 'remote': remote 'r1.example' is not declared: name the fake remotes "
       "in the header field 'remotes'"},
      {HEADER "remotes: r1.example\nscript:\nremote r9.example presence @a:hs\n",
       "fx/t.fixture:8: step 'remote': remote 'r9.example' is not one of the header's 'remotes'"},
      {HEADER "remotes: r1.example\nscript:\nremote r1.example mail @a:hs\n",
       "fx/t.fixture:8: step 'remote': expected 'remote NAME http PATTERN'"},
      {HEADER "remotes: r1.example\nscript:\n!remote r1.example count @a:hs == 1\n",
       "fx/t.fixture:8: step '!remote': expected '!remote NAME http PATTERN'"},
      {HEADER "remotes: r1.example\nscript:\nremote r1.example count @a:hs ~ 1\n",
       "fx/t.fixture:8: step 'remote': expected 'remote NAME count USER OP N'"},
      {HEADER "remotes: r1.example\nscript:\nremote r1.example count @a:hs == -1\n",
       "fx/t.fixture:8: step 'remote': expected 'remote NAME count USER OP N'"},
      {HEADER "remotes: r1.example\nscript:\nremote r1.example presence @a:${int}\n",
       "fx/t.fixture:8: step 'remote': USER: placeholder '${int}' cannot be sent"},
      {HEADER "remotes: r1.example\nscript:\nremote r1.example presence @a:hs On-line\n",
       "fx/t.fixture:8: step 'remote': STATE must be one word of a-z and '_'"},
      {HEADER "remotes: r1.example\nscript:\nremote r1.example http~ (\n",
       "fx/t.fixture:8: step 'remote': bad regular expression"},
      {HEADER "remotes: r1.example\nscript:\nremote r1.example http\n",
       "fx/t.fixture:8: step 'remote': expected a request pattern"},
      {HEADER "script:\ndb connections > 1\n",
       "fx/t.fixture:7: step 'db': expected 'db QUANTITY OP N' (QUANTITY sessions or "
       "idle-in-transaction"},
      {HEADER "script:\n!db sessions >> 1\n",
       "fx/t.fixture:7: step '!db': expected '!db QUANTITY OP N'"},
      {HEADER "script:\ndb sessions > 1 2\n",
       "fx/t.fixture:7: step 'db': expected 'db QUANTITY OP N'"},
      /* side channels: metrics and the SUT's HTTP answers */
      {HEADER "script:\nmetric up\n",
       "fx/t.fixture:7: step 'metric': expected 'metric NAME{LABELS} OP VALUE'"},
      {HEADER "script:\nmetric up == many\n",
       "fx/t.fixture:7: step 'metric': VALUE 'many' is not a number, mark, mark+N or mark-N"},
      {HEADER "script:\nmetric up{name=\"x} == 1\n",
       "fx/t.fixture:7: step 'metric': selector 'up{name=\"x}': column"},
      {HEADER "script:\nmetric up{name=x} == 1\n",
       "fx/t.fixture:7: step 'metric': selector 'up{name=x}'"},
      {HEADER "script:\nmetric a b == 1\n",
       "fx/t.fixture:7: step 'metric': selector 'a b': column 3"},
      {HEADER "script:\n!metric up{a=\"b\"} =< 1\n",
       "fx/t.fixture:7: step '!metric': selector 'up{a=\"b\"} =< 1'"},
      {HEADER "script:\nmetric up >= mark+1\n",
       "fx/t.fixture:7: step 'metric': VALUE mark needs an earlier 'metric-mark up'"},
      {HEADER "script:\nmetric-mark up{a=\"1\"}\nmetric up{a=\"2\"} > mark\n",
       "fx/t.fixture:8: step 'metric': VALUE mark needs an earlier 'metric-mark up{a=\"2\"}'"},
      {HEADER "script:\nmetric-mark up == 1\n",
       "fx/t.fixture:7: step 'metric-mark': selector 'up == 1'"},
      {HEADER "script:\nc1 metric up == 1\n",
       "fx/t.fixture:7: step 'metric': takes no connection (cN)"},
      {HEADER "script:\nunordered\n!metric up\nend\n",
       "fx/t.fixture:8: step '!metric': only '<', '<~' and '<raw' steps"},
      {HEADER "script:\nmetric-mark up\n", "fx/t.fixture: the script checks nothing"},
      {HEADER "script:\nsut-http get /x -> status 200\n",
       "fx/t.fixture:7: step 'sut-http': METHOD must be an upper-case HTTP method"},
      {HEADER "script:\nsut-http GET x -> status 200\n",
       "fx/t.fixture:7: step 'sut-http': PATH must start with '/'"},
      {HEADER "script:\nsut-http GET /x status 200\n",
       "fx/t.fixture:7: step 'sut-http': expected 'sut-http METHOD /PATH -> CHECK'"},
      {HEADER "script:\nsut-http GET /x -> status 99\n",
       "fx/t.fixture:7: step 'sut-http': 'status N' needs a status code in 100..599"},
      {HEADER "script:\nsut-http GET /x -> header\n",
       "fx/t.fixture:7: step 'sut-http': expected a header name after 'header'"},
      {HEADER "script:\nsut-http GET /x -> header Server =~ x\n",
       "fx/t.fixture:7: step 'sut-http': expected 'header NAME' or 'header NAME ~ REGEX'"},
      {HEADER "script:\nsut-http GET /x -> !header Server ~ x\n",
       "fx/t.fixture:7: step 'sut-http': '!header NAME' takes nothing after the name"},
      {HEADER "script:\nsut-http GET /x -> header Server ~ (\n",
       "fx/t.fixture:7: step 'sut-http': bad regular expression"},
      {HEADER "script:\nsut-http GET /${int} -> status 200\n",
       "fx/t.fixture:7: step 'sut-http': placeholder '${int}' cannot be sent"},
      {HEADER "script:\nsut-http GET /x -> body ~ y\n",
       "fx/t.fixture:7: step 'sut-http': expected 'sut-http METHOD /PATH -> CHECK'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rc_error_t err = {.msg = ""};
    fixture_t *f = parse(cases[i].text, &err);
    ck_assert_msg(f == NULL, "case %zu loaded", i);
    ck_assert_msg(strstr(err.msg, cases[i].message) != NULL, "case %zu: '%s' lacks '%s'", i,
                  err.msg, cases[i].message);
  }
}
END_TEST

/* The side-channel steps: what they hold, and which channels the fixture needs. */
START_TEST(side_channel_steps_load) {
  const char *text = HEADER
      "script:\n"
      "metric-mark synapse_util_caches_cache:size{name=\"a b\",x=\"\\\"\"}\n"
      "metric synapse_util_caches_cache:size{name=\"a b\",x=\"\\\"\"} >= mark+2\n"
      "deadline 300\n"
      "!metric up{job=\"w\"}\n"
      "!metric up  <  -1.5e3\n"
      "metric up != mark-1\n";
  rc_error_t err = {.msg = ""};
  fixture_t *f = parse(text, &err);
  ck_assert_msg(f == NULL, "a mark of another selector was accepted");
  ck_assert_msg(strstr(err.msg, "fx/t.fixture:12: step 'metric': VALUE mark needs") != NULL, "%s",
                err.msg);
  text = HEADER
      "script:\n"
      "metric-mark synapse_util_caches_cache:size{name=\"a b\",x=\"\\\"\"}\n"
      "metric synapse_util_caches_cache:size{name=\"a b\",x=\"\\\"\"} >= mark+2\n"
      "deadline 300\n"
      "!metric up{job=\"w\"}\n"
      "!metric up  <  -1.5e3\n"
      "!metric up{a=\"b == 1\"}\n"
      "sut-http OPTIONS /x/${server_name}?a=b -> header Server ~ ^w/[0-9]+ x$\n"
      "sut-http GET / -> !header Server\n"
      "sut-http HEAD /h -> status 204\n"
      "log~ x\n";
  f = parse(text, &err);
  ck_assert_msg(f != NULL, "%s", err.msg);
  ck_assert_uint_eq(f->step_count, 9);
  ck_assert_uint_eq(f->needs, FIXTURE_NEEDS_METRICS | FIXTURE_NEEDS_SUT_HTTP | FIXTURE_NEEDS_LOG);
  const fixture_step_t *s = f->steps;
  ck_assert_int_eq(s[0].kind, FIXTURE_STEP_METRIC_MARK);
  ck_assert_str_eq(s[0].text, "synapse_util_caches_cache:size{name=\"a b\",x=\"\\\"\"}");
  ck_assert_int_eq(s[1].kind, FIXTURE_STEP_METRIC);
  ck_assert_int_eq(s[1].op, FIXTURE_OP_GE);
  ck_assert(s[1].relative);
  ck_assert(s[1].value == 2.0);
  ck_assert_int_eq(s[2].kind, FIXTURE_STEP_METRIC_NOT);
  ck_assert_int_eq(s[2].op, FIXTURE_OP_NONE);
  ck_assert_int_eq(s[2].deadline_ms, 300);
  ck_assert_str_eq(s[2].text, "up{job=\"w\"}");
  ck_assert_int_eq(s[3].op, FIXTURE_OP_LT);
  ck_assert(s[3].value == -1500.0 && !s[3].relative);
  ck_assert_str_eq(s[3].text, "up");
  ck_assert_int_eq(s[4].op, FIXTURE_OP_NONE);
  ck_assert_str_eq(s[4].text, "up{a=\"b == 1\"}");
  s++; /* the sut-http steps follow */
  ck_assert_int_eq(s[4].kind, FIXTURE_STEP_SUT_HTTP);
  ck_assert_str_eq(s[4].method, "OPTIONS");
  ck_assert_str_eq(s[4].text, "/x/${server_name}?a=b");
  ck_assert_int_eq(s[4].check, FIXTURE_CHECK_HEADER_REGEX);
  ck_assert_str_eq(s[4].header, "Server");
  ck_assert_str_eq(s[4].regex, "^w/[0-9]+ x$");
  ck_assert_int_eq(s[5].check, FIXTURE_CHECK_NO_HEADER);
  ck_assert_int_eq(s[6].check, FIXTURE_CHECK_STATUS);
  ck_assert_int_eq(s[6].number, 204);
  /* The selector means what the scrape's text means: labels as conditions, the _total
   * twin, extra labels ignored, matching series summed. */
  prom_t *sel = fixture_selector_parse("reqs{code=\"200\"}", &err);
  ck_assert_msg(sel != NULL, "%s", err.msg);
  const char *scrape_text =
      "reqs_total{code=\"200\",method=\"GET\"} 3\n"
      "reqs_total{code=\"200\",method=\"PUT\"} 4\n"
      "reqs_total{code=\"404\",method=\"GET\"} 100\n";
  prom_t *scrape = prom_parse(scrape_text, strlen(scrape_text), &err);
  ck_assert_ptr_nonnull(scrape);
  size_t found = 0;
  ck_assert(fixture_metric_value(scrape, sel, &found) == 7.0);
  ck_assert_uint_eq(found, 2);
  prom_destroy(sel);
  sel = fixture_selector_parse("reqs{code=\"500\"}", &err);
  ck_assert(fixture_metric_value(scrape, sel, &found) == 0.0);
  ck_assert_uint_eq(found, 0);
  prom_destroy(sel);
  prom_destroy(scrape);
  ck_assert(fixture_op_holds(FIXTURE_OP_LE, 1, 1) && !fixture_op_holds(FIXTURE_OP_LT, 1, 1));
  ck_assert(!fixture_op_holds(FIXTURE_OP_NONE, 1, 1));
  ck_assert_str_eq(fixture_op_text(FIXTURE_OP_NE), "!=");
  fixture_destroy(f);
}
END_TEST

/* The remote and db steps: what they hold, and the needs (roles) they imply. */
START_TEST(remote_and_db_steps_load) {
  const char *text = HEADER
      "remotes: remote1.example , r2.test:8448\n"
      "script:\n"
      "remote remote1.example http PUT /_matrix/federation/v1/send/${word}\n"
      "!remote r2.test:8448 http~ GET /.*\n"
      "deadline 700\n"
      "remote remote1.example presence @alice:${server_name} online\n"
      "!remote r2.test:8448 presence *\n"
      "remote remote1.example count @alice:${server_name} <= 2\n"
      "db sessions >= 1\n"
      "!db idle-in-transaction > 0\n";
  rc_error_t err = {.msg = ""};
  fixture_t *f = parse(text, &err);
  ck_assert_msg(f != NULL, "%s", err.msg);
  ck_assert_uint_eq(f->remote_count, 2);
  ck_assert_str_eq(f->remotes[0], "remote1.example");
  ck_assert_str_eq(f->remotes[1], "r2.test:8448");
  ck_assert_uint_eq(f->needs, FIXTURE_NEEDS_REMOTES | FIXTURE_NEEDS_DB);
  ck_assert_uint_eq(f->step_count, 7);
  const fixture_step_t *s = f->steps;
  ck_assert_int_eq(s[0].kind, FIXTURE_STEP_REMOTE);
  ck_assert_int_eq(s[0].remote, 0);
  ck_assert(!s[0].presence);
  ck_assert_int_eq(s[0].use, FIXTURE_TEXT_PATTERN);
  ck_assert_str_eq(s[0].text, "PUT /_matrix/federation/v1/send/${word}");
  ck_assert_int_eq(s[1].kind, FIXTURE_STEP_REMOTE_NOT);
  ck_assert_int_eq(s[1].remote, 1);
  ck_assert_int_eq(s[1].use, FIXTURE_TEXT_REGEX);
  ck_assert_str_eq(s[1].text, "GET /.*");
  ck_assert_int_eq(s[2].kind, FIXTURE_STEP_REMOTE);
  ck_assert(s[2].presence);
  ck_assert_str_eq(s[2].text, "@alice:${server_name}");
  ck_assert_str_eq(s[2].state, "online");
  ck_assert_int_eq(s[2].deadline_ms, 700);
  ck_assert_int_eq(s[3].kind, FIXTURE_STEP_REMOTE_NOT);
  ck_assert_str_eq(s[3].text, "*");
  ck_assert_ptr_null(s[3].state);
  ck_assert_int_eq(s[4].kind, FIXTURE_STEP_REMOTE_COUNT);
  ck_assert_int_eq(s[4].op, FIXTURE_OP_LE);
  ck_assert(s[4].value == 2.0);
  ck_assert_int_eq(s[5].kind, FIXTURE_STEP_DB);
  ck_assert_str_eq(s[5].text, "sessions");
  ck_assert_int_eq(s[5].op, FIXTURE_OP_GE);
  ck_assert(s[5].value == 1.0);
  ck_assert_int_eq(s[6].kind, FIXTURE_STEP_DB_NOT);
  ck_assert_str_eq(s[6].text, "idle-in-transaction");
  ck_assert_int_eq(s[6].op, FIXTURE_OP_GT);
  fixture_destroy(f);
  /* A remote step alone checks something. */
  text = HEADER "remotes: r\nscript:\n!remote r presence @a:hs\n";
  f = parse(text, &err);
  ck_assert_msg(f != NULL, "%s", err.msg);
  fixture_destroy(f);
}
END_TEST

START_TEST(load_reads_files_and_names_them) {
  char *dir = test_make_temp_dir("fixture-parse");
  char *path = test_path(dir, "x.fixture");
  rc_error_t err;
  ck_assert_ptr_null(fixture_load(path, "shown/x.fixture", &err));
  ck_assert_msg(strstr(err.msg, "shown/x.fixture: No such file") != NULL, "%s", err.msg);
  const char *text = HEADER "script:\n< X\nwait x\n";
  ck_assert_int_eq(test_write_file(path, text, strlen(text)), 0);
  ck_assert_ptr_null(fixture_load(path, "shown/x.fixture", &err));
  ck_assert_msg(strstr(err.msg, "shown/x.fixture:8: step 'wait'") != NULL, "%s", err.msg);
  free(path);
  test_remove_tree(dir);
  free(dir);
}
END_TEST

/* ---- text ------------------------------------------------------------------------------- */

static bool matches(const char *pattern, fixture_text_use_t use, const char *line) {
  fixture_vars_t vars = {"hs1.example", "worker1", "master"};
  rc_error_t err;
  fixture_matcher_t *m = fixture_matcher_create(pattern, use, &vars, &err);
  ck_assert_msg(m != NULL, "%s: %s", pattern, err.msg);
  bool ok = fixture_matcher_test(m, line, strlen(line));
  fixture_matcher_destroy(m);
  return ok;
}

START_TEST(placeholders_and_matchers) {
  ck_assert(matches("SERVER ${server_name}", FIXTURE_TEXT_PATTERN, "SERVER hs1.example"));
  ck_assert(!matches("SERVER ${server_name}", FIXTURE_TEXT_PATTERN, "SERVER hs1xexample"));
  ck_assert(matches("USER_SYNC ${instance_name} @a:${server_name} start ${int}",
                    FIXTURE_TEXT_PATTERN, "USER_SYNC worker1 @a:hs1.example start 1795911727218"));
  ck_assert(!matches("PING ${int}", FIXTURE_TEXT_PATTERN, "PING 12x"));
  ck_assert(matches("PING ${int}", FIXTURE_TEXT_PATTERN, "PING -12"));
  ck_assert(matches("GET /a/${word}?x=1", FIXTURE_TEXT_PATTERN, "GET /a/tx9?x=1"));
  ck_assert(!matches("GET /a/${word}?x=1", FIXTURE_TEXT_PATTERN, "GET /a/t x?x=1"));
  ck_assert(matches("ERROR ${any}", FIXTURE_TEXT_PATTERN, "ERROR "));
  ck_assert(matches("A ${any} B ${any} C", FIXTURE_TEXT_PATTERN, "A x B y B z C"));
  ck_assert(matches("REPLICATE${sp}", FIXTURE_TEXT_PATTERN, "REPLICATE "));
  ck_assert(matches("X $${lit} $abc", FIXTURE_TEXT_PATTERN, "X ${lit} $abc"));
  /* Regular expressions: values escaped, wildcards as classes, the whole line. */
  ck_assert(matches("SERVER ${server_name}", FIXTURE_TEXT_REGEX, "SERVER hs1.example"));
  ck_assert(!matches("SERVER ${server_name}", FIXTURE_TEXT_REGEX, "SERVER hs1Xexample"));
  ck_assert(matches("REPLICATE ?", FIXTURE_TEXT_REGEX, "REPLICATE"));
  ck_assert(!matches("REPLICATE", FIXTURE_TEXT_REGEX, "REPLICATE typing 0"));
  ck_assert(matches("<raw>", FIXTURE_TEXT_RAW, "<raw>"));
  ck_assert(matches("A\\tB\\\\", FIXTURE_TEXT_RAW, "A\tB\\"));
  size_t len;
  fixture_vars_t vars = {"hs1.example", "w1", NULL};
  char *sent = fixture_text_expand("POSITION typing ${writer} 1 1 @${server_name}",
                                   FIXTURE_TEXT_SEND, &vars, &len);
  ck_assert_str_eq(sent, "POSITION typing master 1 1 @hs1.example");
  free(sent);
  sent = fixture_text_expand("PING ${now_ms}", FIXTURE_TEXT_SEND, &vars, &len);
  ck_assert_msg(strlen(sent) > 10 && len == strlen(sent), "%s", sent);
  free(sent);
}
END_TEST

/* fixture_text_escape is undone by the RAW expansion, whatever the bytes. */
START_TEST(escapes_round_trip) {
  unsigned int state = 12345;
  for (int round = 0; round < 200; round++) {
    char bytes[64];
    size_t n = (size_t)(round % 60) + 1;
    for (size_t i = 0; i < n; i++) {
      state = state * 1103515245u + 12345u;
      bytes[i] = (char)(state >> 16);
    }
    if (round % 3 == 0) memcpy(bytes, "caf\xc3\xa9 ", n < 6 ? n : 6);
    char *escaped = fixture_text_escape(bytes, n);
    ck_assert_ptr_nonnull(escaped);
    ck_assert_msg(strchr(escaped, '\n') == NULL && strchr(escaped, '\r') == NULL, "%s", escaped);
    size_t len = strlen(escaped);
    ck_assert_msg(len == 0 || escaped[len - 1] != ' ', "trailing blank in '%s'", escaped);
    rc_error_t err;
    ck_assert_msg(fixture_text_check(escaped, FIXTURE_TEXT_RAW, &err) == 0, "%s", err.msg);
    size_t back_len;
    char *back = fixture_text_expand(escaped, FIXTURE_TEXT_RAW, NULL, &back_len);
    ck_assert_uint_eq(back_len, n);
    ck_assert(memcmp(back, bytes, n) == 0);
    free(back);
    free(escaped);
  }
}
END_TEST

/* ---- the torture schedule ----------------------------------------------------------------- */

START_TEST(torture_decisions_repeat_for_a_seed) {
  torture_plan_t a = {.level = 2, .seed = 7}, b = {.level = 2, .seed = 7},
                 c = {.level = 2, .seed = 8};
  int differ = 0;
  for (uint64_t line = 0; line < 200; line++) {
    size_t ca[TORTURE_MAX_PIECES - 1], cb[TORTURE_MAX_PIECES - 1], cc[TORTURE_MAX_PIECES - 1];
    int da = torture_delay_ms(&a, 1, line);
    ck_assert_int_eq(da, torture_delay_ms(&b, 1, line));
    ck_assert(da >= 0 && da <= 25);
    size_t na = torture_cuts(&a, 1, line, 40, ca);
    ck_assert_uint_eq(na, torture_cuts(&b, 1, line, 40, cb));
    ck_assert(na <= TORTURE_MAX_PIECES - 1);
    for (size_t i = 0; i < na; i++) {
      ck_assert_uint_eq(ca[i], cb[i]);
      ck_assert(ca[i] > 0 && ca[i] < 40);
      if (i > 0) ck_assert(ca[i] > ca[i - 1]);
    }
    size_t nc = torture_cuts(&c, 1, line, 40, cc);
    differ += da != torture_delay_ms(&c, 1, line) || na != nc;
  }
  ck_assert_msg(differ > 50, "seeds 7 and 8 gave nearly the same schedule (%d differences)",
                differ);
  torture_plan_t one = {.level = 1, .seed = 7}, off = {.level = 0, .seed = 7};
  size_t cuts[TORTURE_MAX_PIECES - 1];
  ck_assert_uint_eq(torture_cuts(&one, 1, 3, 40, cuts), 0); /* cuts only from level 2 */
  ck_assert_int_eq(torture_delay_ms(&off, 1, 3), 0);
  ck_assert(torture_delay_ms(&one, 1, 3) <= 10);
  /* A shuffle is a permutation, the same for the same seed. */
  size_t p[20], q[20];
  for (size_t i = 0; i < 20; i++) p[i] = q[i] = i;
  torture_shuffle(&a, 2, 0, p, 20);
  torture_shuffle(&b, 2, 0, q, 20);
  int seen[20] = {0};
  for (size_t i = 0; i < 20; i++) {
    ck_assert_uint_eq(p[i], q[i]);
    seen[p[i]]++;
  }
  for (size_t i = 0; i < 20; i++) ck_assert_int_eq(seen[i], 1);
  /* Drops: level 3 only, the first connection only, within its opening, for some seeds. */
  int dropped = 0;
  for (uint64_t seed = 0; seed < 100; seed++) {
    torture_plan_t three = {.level = 3, .seed = seed}, two = {.level = 2, .seed = seed};
    int k = torture_drop_after(&three, 1, 15);
    ck_assert(k >= 0 && k <= 15);
    dropped += k > 0;
    ck_assert_int_eq(torture_drop_after(&three, 2, 15), 0);
    ck_assert_int_eq(torture_drop_after(&two, 1, 15), 0);
  }
  ck_assert_msg(dropped > 20 && dropped < 80, "%d of 100 seeds drop", dropped);
}
END_TEST

/* ---- the recorder's writer ---------------------------------------------------------------- */

static void add(ledger_t *l, int conn, ledger_kind_t kind, ledger_side_t side, const char *text) {
  ck_assert_ptr_nonnull(ledger_append(l, conn, kind, side,
                                      kind == LEDGER_CLOSE ? LEDGER_CLOSE_FIN : LEDGER_CLOSE_NONE,
                                      text, text ? strlen(text) : 0));
}

static char *write_fixture(const ledger_t *l, proto_dialect_t dialect) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  fixture_write_options_t o = {.requirements = "HS-01",
                               .level = "MUST",
                               .requirement = "recorded",
                               .source = "test",
                               .dialect = dialect,
                               .transport = "tcp",
                               .ping_interval_ms = 250,
                               .server_name = "hs9.test",
                               .instance_name = "worker7",
                               .writer = "master",
                               .from_seq = 1,
                               .to_seq = ledger_next_seq(l)};
  rc_error_t err;
  ck_assert_msg(fixture_write_ledger(out, l, &o, &err) == 0, "%s", err.msg);
  fclose(out);
  return text;
}

START_TEST(writer_output_loads_back) {
  ledger_t *l = ledger_create(0);
  add(l, 1, LEDGER_OPEN, LEDGER_SIDE_SUT, "127.0.0.1:5");
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_MOCK, "SERVER hs9.test");
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_MOCK, "PING 1795911719153");
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_SUT, "NAME worker7");
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_SUT, "PING 1795911719151");
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_SUT, "REPLICATE ");
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_MOCK, "POSITION typing master 0 0");
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_MOCK, "PING 1795911724155"); /* keepalive: dropped */
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_SUT, "USER_SYNC worker7 @a:hs9.test start 1795911727218");
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_MOCK, "RDATA events master 1 [\"${x}\"]");
  add(l, 0, LEDGER_HTTP, LEDGER_SIDE_SUT,
      "GET /_synapse/replication/get_repl_stream_updates/typing/Tx1?from_token=0&upto_token=9");
  add(l, 0, LEDGER_NOTE, LEDGER_SIDE_MOCK, "mock: keepalive off");
  add(l, 0, LEDGER_NOTE, LEDGER_SIDE_MOCK, "harness: SIGTERM to the SUT");
  add(l, 1, LEDGER_CLOSE, LEDGER_SIDE_SUT, NULL);
  char *text = write_fixture(l, PROTO_DIALECT_MODERN);
  static const char *const want[] = {
      "mock: scripted\n",
      "unexpected: fail\n",
      "connect c1\n",
      "c1 > SERVER ${server_name}\n",
      "c1 > PING ${now_ms}\n",
      "c1 < NAME ${instance_name}\n",
      "c1 <~ REPLICATE ?\n",
      "c1 > POSITION typing ${writer} 0 0\n",
      "c1 < USER_SYNC ${instance_name} @a:${server_name} start ${int}\n",
      "c1 > RDATA events ${writer} 1 [\"$${x}\"]\n",
      "http GET "
      "/_synapse/replication/get_repl_stream_updates/typing/${word}?from_token=0&upto_token=9\n",
      "ping off\n",
      "terminate\n",
      "c1 closed by sut\n"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    ck_assert_msg(strstr(text, want[i]) != NULL, "no '%s' in:\n%s", want[i], text);
  ck_assert_msg(strstr(text, "1795911724155") == NULL && strstr(text, "< PING") == NULL, "%s",
                text);
  rc_error_t err;
  fixture_t *f = fixture_parse(text, strlen(text), "recorded.fixture", &err);
  ck_assert_msg(f != NULL, "%s\n%s", err.msg, text);
  fixture_destroy(f);
  free(text);
  ledger_destroy(l);
}
END_TEST

START_TEST(writer_2018_pieces_and_odd_bytes) {
  ledger_t *l = ledger_create(0);
  add(l, 1, LEDGER_OPEN, LEDGER_SIDE_SUT, "127.0.0.1:5");
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_SUT, "REPLICATE events 1");
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_MOCK, "POSITION events 1");
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_SUT, "REPLICATE caches 4");
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_MOCK, "POSITION caches 4");
  /* 1-byte writes of "RDA\n" */
  for (const char *p = "RDA"; *p; p++) {
    const ledger_entry_t *e =
        ledger_append(l, 1, LEDGER_LINE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, p, 1);
    ((ledger_entry_t *)e)->partial = true;
  }
  add(l, 1, LEDGER_LINE, LEDGER_SIDE_MOCK, "");
  ck_assert_ptr_nonnull(
      ledger_append(l, 1, LEDGER_LINE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, "BAD\0LINE ", 9));
  add(l, 1, LEDGER_CLOSE, LEDGER_SIDE_MOCK, NULL);
  char *text = write_fixture(l, PROTO_DIALECT_2018);
  static const char *const want[] = {
      "c1 unordered\n  c1 < REPLICATE events 1\n  c1 < REPLICATE caches 4\nend\n"
      "c1 > POSITION events 1\nc1 > POSITION caches 4\n",
      "c1 >split 1 RDA\n", "c1 >raw BAD\\x00LINE\\x20\\n\n", "c1 close\n"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    ck_assert_msg(strstr(text, want[i]) != NULL, "no '%s' in:\n%s", want[i], text);
  rc_error_t err;
  fixture_t *f = fixture_parse(text, strlen(text), "recorded.fixture", &err);
  ck_assert_msg(f != NULL, "%s\n%s", err.msg, text);
  fixture_destroy(f);
  free(text);
  ledger_destroy(l);
}
END_TEST

START_TEST(writer_refuses_an_empty_ledger) {
  ledger_t *l = ledger_create(0);
  add(l, 0, LEDGER_NOTE, LEDGER_SIDE_MOCK, "nothing");
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  fixture_write_options_t o = {.requirements = "HS-01",
                               .level = "MUST",
                               .requirement = "r",
                               .source = "s",
                               .dialect = PROTO_DIALECT_MODERN,
                               .transport = "tcp",
                               .ping_interval_ms = -1,
                               .from_seq = 1,
                               .to_seq = ledger_next_seq(l)};
  rc_error_t err;
  ck_assert_int_eq(fixture_write_ledger(out, l, &o, &err), -1);
  ck_assert_msg(strstr(err.msg, "never connected") != NULL, "%s", err.msg);
  fclose(out);
  free(text);
  ledger_destroy(l);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fixture_parse");
  TCase *tc = tcase_create("format");
  tcase_add_test(tc, valid_fixture_loads);
  tcase_add_test(tc, load_errors_name_file_line_and_field);
  tcase_add_test(tc, side_channel_steps_load);
  tcase_add_test(tc, remote_and_db_steps_load);
  tcase_add_test(tc, load_reads_files_and_names_them);
  tcase_add_test(tc, placeholders_and_matchers);
  tcase_add_test(tc, escapes_round_trip);
  tcase_add_test(tc, torture_decisions_repeat_for_a_seed);
  tcase_add_test(tc, writer_output_loads_back);
  tcase_add_test(tc, writer_2018_pieces_and_odd_bytes);
  tcase_add_test(tc, writer_refuses_an_empty_ledger);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
