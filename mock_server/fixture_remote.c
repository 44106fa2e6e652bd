/* The fake-remote steps of fixtures (fixture_remote.h). */
#include "fixture_remote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_parser.h"

#define REMOTE_USAGE                                                                       \
  "expected 'remote NAME http PATTERN', 'remote NAME http~ REGEX', 'remote NAME presence " \
  "USER [STATE]' or 'remote NAME count USER OP N'"
#define NOT_REMOTE_USAGE                                                               \
  "expected '!remote NAME http PATTERN', '!remote NAME http~ REGEX' or '!remote NAME " \
  "presence USER [STATE]'"
#define COUNT_USAGE "expected 'remote NAME count USER OP N' (OP one of == != < <= > >=; N >= 0)"

/* The next blank-separated word of *at into buf (moving *at past it and the blanks
 * after it); false when there is none or it does not fit. */
static bool take_word(const char **at, char *buf, size_t cap) {
  const char *s = *at;
  while (*s == ' ') s++;
  size_t n = strcspn(s, " ");
  if (n == 0 || n >= cap) return false;
  memcpy(buf, s, n);
  buf[n] = '\0';
  s += n;
  while (*s == ' ') s++;
  *at = s;
  return true;
}

static int remote_index(parser_t *p, const char *kw, const char *name) {
  const fixture_t *f = p->f;
  for (size_t i = 0; i < f->remote_count; i++)
    if (strcmp(f->remotes[i], name) == 0) return (int)i;
  char why[600];
  if (f->remote_count == 0)
    snprintf(why, sizeof why,
             "remote '%.200s' is not declared: name the fake remotes in the header field "
             "'remotes'",
             name);
  else
    snprintf(why, sizeof why, "remote '%.200s' is not one of the header's 'remotes'", name);
  fixture_parser_step_error(p, kw, why);
  return -1;
}

static bool is_state(const char *s) {
  for (const char *c = s; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || *c == '_')) return false;
  return *s != '\0';
}

/* USER [STATE] (presence) or USER OP N (count) into s. */
static int presence_args(parser_t *p, const char *kw, fixture_step_t *s, const char *at, bool count,
                         const char *usage) {
  char user[512], word[64];
  if (!take_word(&at, user, sizeof user)) return fixture_parser_step_error(p, kw, usage);
  rc_error_t why;
  if (strcmp(user, "*") != 0 && fixture_text_check(user, FIXTURE_TEXT_SEND, &why) != 0) {
    char msg[RC_ERROR_MAX + 64];
    snprintf(msg, sizeof msg, "USER: %s", why.msg);
    return fixture_parser_step_error(p, kw, msg);
  }
  if ((s->text = strdup(user)) == NULL) return rc_error_set(p->err, "out of memory");
  if (count) {
    if (!take_word(&at, word, sizeof word)) return fixture_parser_step_error(p, kw, usage);
    s->op = fixture_op_parse(word, strlen(word));
    int64_t n = 0;
    if (s->op == FIXTURE_OP_NONE || !take_word(&at, word, sizeof word) ||
        !fixture_parser_int64(word, 0, 1000000, &n) || *at != '\0')
      return fixture_parser_step_error(p, kw, usage);
    s->value = (double)n;
    return 0;
  }
  if (*at == '\0') return 0;
  if (!take_word(&at, word, sizeof word) || !is_state(word) || *at != '\0')
    return fixture_parser_step_error(
        p, kw, "STATE must be one word of a-z and '_' (online, unavailable, offline)");
  return (s->state = strdup(word)) == NULL ? rc_error_set(p->err, "out of memory") : 0;
}

int fixture_remote_parse(parser_t *p, const char *kw, const char *arg, const char *src) {
  bool negated = kw[0] == '!';
  const char *usage = negated ? NOT_REMOTE_USAGE : REMOTE_USAGE;
  const char *at = arg;
  char name[256], what[16];
  if (!take_word(&at, name, sizeof name) || !take_word(&at, what, sizeof what))
    return fixture_parser_step_error(p, kw, usage);
  int remote = remote_index(p, kw, name);
  if (remote < 0) return -1;
  bool http = strcmp(what, "http") == 0, regex = strcmp(what, "http~") == 0;
  bool presence = strcmp(what, "presence") == 0, count = strcmp(what, "count") == 0;
  if (!(http || regex || presence || count) || (count && negated))
    return fixture_parser_step_error(p, kw, usage);
  fixture_step_kind_t kind = count     ? FIXTURE_STEP_REMOTE_COUNT
                             : negated ? FIXTURE_STEP_REMOTE_NOT
                                       : FIXTURE_STEP_REMOTE;
  fixture_step_t *s = fixture_parser_new_step(p, kind, src);
  if (s == NULL) return -1;
  s->remote = remote;
  s->presence = presence || count;
  p->f->needs |= FIXTURE_NEEDS_REMOTES;
  if (s->presence) return presence_args(p, kw, s, at, count, count ? COUNT_USAGE : usage);
  s->use = regex ? FIXTURE_TEXT_REGEX : FIXTURE_TEXT_PATTERN;
  if (*at == '\0') return fixture_parser_step_error(p, kw, "expected a request pattern");
  rc_error_t why;
  if (fixture_text_check(at, s->use, &why) != 0) return fixture_parser_step_error(p, kw, why.msg);
  return (s->text = strdup(at)) == NULL ? rc_error_set(p->err, "out of memory") : 0;
}

/* ---- judging -------------------------------------------------------------------------- */

int fixture_remote_want_init(fixture_remote_want_t *want, const fixture_step_t *s,
                             const fixture_vars_t *vars, rc_error_t *err) {
  memset(want, 0, sizeof *want);
  if (!s->presence) {
    want->request = fixture_matcher_create(s->text, s->use, vars, err);
    return want->request == NULL ? -1 : 0;
  }
  want->state = s->state;
  if (strcmp(s->text, "*") == 0) return 0;
  size_t len = 0;
  want->user = fixture_text_expand(s->text, FIXTURE_TEXT_SEND, vars, &len);
  return want->user == NULL ? rc_error_set(err, "out of memory") : 0;
}

void fixture_remote_want_clear(fixture_remote_want_t *want) {
  fixture_matcher_destroy(want->request);
  free(want->user);
  memset(want, 0, sizeof *want);
}

static bool update_matches(const fake_remote_update_t *u, const fixture_remote_want_t *want) {
  if (want->user != NULL && strcmp(u->user_id, want->user) != 0) return false;
  return want->state == NULL || (u->presence != NULL && strcmp(u->presence, want->state) == 0);
}

long fixture_remote_find(const fake_remote_t *remote, const fixture_step_t *s,
                         const fixture_remote_want_t *want, size_t from, char *seen, size_t cap) {
  if (!s->presence) {
    for (size_t i = from; i < fake_remote_request_count(remote); i++) {
      const fake_remote_request_t *r = fake_remote_request(remote, i);
      char line[2048];
      snprintf(line, sizeof line, "%s %s", r->method, r->path);
      if (!fixture_matcher_test(want->request, line, strlen(line))) continue;
      snprintf(seen, cap, "%s", line);
      return (long)i;
    }
    return -1;
  }
  size_t n = fake_remote_updates(remote, NULL, NULL, 0);
  if (n <= from) return -1;
  fake_remote_update_t *all = calloc(n, sizeof *all);
  if (all == NULL) return -1;
  fake_remote_updates(remote, NULL, all, n);
  long found = -1;
  for (size_t i = from; i < n && found < 0; i++)
    if (update_matches(&all[i], want)) {
      found = (long)i;
      snprintf(seen, cap, "%s %s", all[i].user_id, all[i].presence ? all[i].presence : "(none)");
    }
  free(all);
  return found;
}

size_t fixture_remote_count(const fake_remote_t *remote, const fixture_remote_want_t *want) {
  size_t n = fake_remote_updates(remote, NULL, NULL, 0);
  fake_remote_update_t *all = n ? calloc(n, sizeof *all) : NULL;
  if (all == NULL) return 0;
  fake_remote_updates(remote, NULL, all, n);
  size_t matching = 0;
  for (size_t i = 0; i < n; i++) matching += update_matches(&all[i], want);
  free(all);
  return matching;
}
