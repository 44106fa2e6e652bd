/* profile: loading and validating SUT profiles (format in docs/PROFILES.md).
 *
 * Validation is complete at load time so that a bad profile is refused before any
 * process starts: templates are checked against PROFILE_PLACEHOLDERS, regular
 * expressions are compiled, and a placeholder-free config template is read and its
 * placeholders checked too. The first problem found is reported. */
#include "profile.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "profile_internal.h"
#include "profile_database.h"
#include "rc_regex.h"

const char *const PROFILE_PLACEHOLDERS[] = {
    "repl_host",   "repl_port",     "http_url",   "http_port",   "sut_http_port",
    "log_path",    "work_dir",      "db_dsn",     "server_name", "bin_dir",
    "profile_dir", "instance_name", "redis_host", "redis_port",  "db_host",
    "db_port",     "db_name",       "db_user",    NULL,
};

/* "{env:NAME}" takes its value from the harness's environment (PROFILE_ENV_PREFIX). */
#define PROFILE_ENV_PREFIX "env:"

/* Profiles and config templates are small text files; anything bigger is a mistake
 * (a binary passed by accident) and must not be slurped into memory. */
#define PROFILE_MAX_FILE_BYTES (1024 * 1024)
#define PROFILE_ERA_PART_MAX 99999

/* ---------------------------------------------------------------------------------
 * Small helpers */

/* Joins a NULL-terminated name list as "a, b, c" for "(known: ...)" hints. */
static void names_join(const char *const *names, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; names[i] != NULL && used < cap; i++) {
    int n = snprintf(buf + used, cap - used, "%s%s", i > 0 ? ", " : "", names[i]);
    if (n < 0) break;
    used += (size_t)n;
  }
}

static bool name_in_list(const char *const *names, const char *name, size_t len) {
  for (size_t i = 0; names[i] != NULL; i++) {
    if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) return true;
  }
  return false;
}

/* Reads a whole regular file (up to PROFILE_MAX_FILE_BYTES). On failure returns NULL
 * and writes the reason (strerror or "too large") into why. */
static char *file_read_all(const char *path, size_t *len_out, char *why, size_t why_cap) {
  FILE *file = fopen(path, "rb");
  struct stat st;
  char *data = NULL;
  if (file == NULL || fstat(fileno(file), &st) != 0) {
    snprintf(why, why_cap, "%s", strerror(errno));
  } else if (S_ISDIR(st.st_mode)) {
    snprintf(why, why_cap, "%s", strerror(EISDIR));
  } else if (!S_ISREG(st.st_mode)) {
    snprintf(why, why_cap, "not a regular file");
  } else if (st.st_size > PROFILE_MAX_FILE_BYTES) {
    snprintf(why, why_cap, "file is larger than %d bytes", PROFILE_MAX_FILE_BYTES);
  } else if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
    snprintf(why, why_cap, "out of memory");
  } else {
    size_t got = fread(data, 1, (size_t)st.st_size, file);
    if (ferror(file)) {
      snprintf(why, why_cap, "%s", strerror(errno));
      free(data);
      data = NULL;
    } else {
      data[got] = '\0';
      *len_out = got;
    }
  }
  if (file != NULL) fclose(file);
  return data;
}

/* ---------------------------------------------------------------------------------
 * Templates */

static bool env_name_valid_n(const char *name, size_t len) {
  if (len == 0 || !(isalpha((unsigned char)name[0]) || name[0] == '_')) return false;
  for (size_t i = 0; i < len; i++) {
    if (!(isalnum((unsigned char)name[i]) || name[i] == '_')) return false;
  }
  return true;
}

/* Whether name[0..len) is "env:NAME" with a valid variable name. */
static bool env_placeholder(const char *name, size_t len) {
  size_t plen = strlen(PROFILE_ENV_PREFIX);
  return len > plen && memcmp(name, PROFILE_ENV_PREFIX, plen) == 0 &&
         env_name_valid_n(name + plen, len - plen);
}

/* The value of an "{env:NAME}" placeholder: unset or empty is an error, so a profile
 * never runs a half-filled command line. */
static bool env_value(const char *name, size_t len, const char **value, rc_error_t *err) {
  size_t plen = strlen(PROFILE_ENV_PREFIX);
  char var[256];
  snprintf(var, sizeof var, "%.*s", (int)(len - plen), name + plen);
  *value = getenv(var);
  if (*value != NULL && (*value)[0] != '\0') return true;
  rc_error_set(err, "placeholder '{%.*s}': environment variable %s is not set",
               len > 120 ? 120 : (int)len, name, var);
  return false;
}

/* Renders a template: "{{" and "}}" become literal braces, "{name}" becomes `fill`
 * when fill is non-NULL (validation: any known placeholder, or one of the field's own
 * `extra` names such as {n}) or the value from vars.
 * On error returns NULL, fills err and sets *err_offset to the byte offset of the
 * offending brace. */
char *profile_render(const char *text, const profile_var_t *vars, size_t var_count,
                     const char *fill, const char *const *extra, size_t *err_offset,
                     rc_error_t *err) {
  char *data = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&data, &size);
  if (out == NULL) {
    *err_offset = 0;
    rc_error_set(err, "out of memory");
    return NULL;
  }
  for (const char *p = text; *p != '\0';) {
    size_t plain = strcspn(p, "{}");
    fwrite(p, 1, plain, out);
    p += plain;
    if (*p == '\0') break;
    *err_offset = (size_t)(p - text);
    if (p[1] == p[0]) {
      fputc(*p, out);
      p += 2;
      continue;
    }
    if (*p == '}') {
      rc_error_set(err, "stray '}' at offset %zu (write '}}' for a literal brace)", *err_offset);
      goto fail;
    }
    const char *name = p + 1;
    size_t len = strcspn(name, "{}");
    if (name[len] != '}') {
      rc_error_set(err, "unclosed '{' at offset %zu (write '{{' for a literal brace)", *err_offset);
      goto fail;
    }
    int shown = len > 80 ? 80 : (int)len;
    bool from_env = env_placeholder(name, len);
    bool known = from_env || name_in_list(PROFILE_PLACEHOLDERS, name, len) ||
                 (extra != NULL && name_in_list(extra, name, len));
    const char *value = fill != NULL && known ? fill : NULL;
    if (from_env && fill == NULL && !env_value(name, len, &value, err)) goto fail;
    for (size_t i = 0; fill == NULL && i < var_count && value == NULL; i++) {
      if (vars[i].name != NULL && strlen(vars[i].name) == len &&
          memcmp(vars[i].name, name, len) == 0)
        value = vars[i].value;
    }
    if (value == NULL && fill == NULL && known) {
      char given[512] = "";
      for (size_t i = 0, used = 0; i < var_count && used < sizeof given; i++) {
        if (vars[i].name == NULL || vars[i].value == NULL) continue;
        int n =
            snprintf(given + used, sizeof given - used, "%s%s", used > 0 ? ", " : "", vars[i].name);
        used += n > 0 ? (size_t)n : 0;
      }
      rc_error_set(err, "placeholder '{%.*s}' has no value here (values given: %s)", shown, name,
                   given[0] != '\0' ? given : "none");
      goto fail;
    }
    if (value == NULL) {
      char list[512], own[128] = "";
      names_join(PROFILE_PLACEHOLDERS, list, sizeof list);
      if (extra != NULL) names_join(extra, own, sizeof own);
      rc_error_set(err, "unknown placeholder '{%.*s}' (known: %s, env:NAME%s%s)", shown, name,
                   list, own[0] ? ", " : "", own);
      goto fail;
    }
    fputs(value, out);
    p = name + len + 1;
  }
  if (fclose(out) != 0 || data == NULL) {
    free(data);
    *err_offset = 0;
    rc_error_set(err, "out of memory");
    return NULL;
  }
  return data;
fail:
  fclose(out);
  free(data);
  return NULL;
}

char *profile_expand(const char *template_text, const profile_var_t *vars, size_t var_count,
                     rc_error_t *err) {
  if (template_text == NULL) {
    rc_error_set(err, "no template to expand (NULL)");
    return NULL;
  }
  size_t offset = 0;
  return profile_render(template_text, vars, var_count, NULL, NULL, &offset, err);
}

/* ---------------------------------------------------------------------------------
 * Loader state and error reporting */

int profile_fail(const profile_loader_t *ld, const char *field, const char *fmt, ...) {
  char msg[RC_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (field == NULL) return rc_error_set(ld->err, "%s: %s", ld->path, msg);
  return rc_error_set(ld->err, "%s: field '%s': %s", ld->path, field, msg);
}

const char *profile_json_type(const json_t *value) {
  static const char *const words[] = {
      [JSON_OBJECT] = "object",   [JSON_ARRAY] = "array", [JSON_STRING] = "string",
      [JSON_INTEGER] = "integer", [JSON_REAL] = "real",   [JSON_TRUE] = "boolean",
      [JSON_FALSE] = "boolean",   [JSON_NULL] = "null",
  };
  return words[json_typeof(value)];
}

int profile_copy_string(const profile_loader_t *ld, const char *text, char **dst) {
  *dst = strdup(text);
  if (*dst == NULL) return profile_fail(ld, NULL, "out of memory");
  return 0;
}

/* Rejects members of obj not in known, so typos cannot pass silently. prefix is the
 * object's field path, NULL for the top level. */
int profile_check_keys(const profile_loader_t *ld, json_t *obj, const char *prefix,
                       const char *const *known) {
  const char *key;
  json_t *value;
  json_object_foreach(obj, key, value) {
    if (name_in_list(known, key, strlen(key))) continue;
    char list[512];
    names_join(known, list, sizeof list);
    if (prefix == NULL)
      return profile_fail(ld, NULL, "unknown top-level key '%s' (known: %s)", key, list);
    return profile_fail(ld, prefix, "unknown key '%s' (known: %s)", key, list);
  }
  return 0;
}

/* Fetches obj[key] as one of choices (NULL-terminated) and stores its index in *out;
 * an absent key leaves *out alone unless required. */
static int get_choice(const profile_loader_t *ld, json_t *obj, const char *key, const char *field,
                      const char *const *choices, bool required, int *out) {
  char expected[160] = "expected";
  for (size_t i = 0, used = strlen(expected); choices[i] != NULL; i++, used = strlen(expected))
    snprintf(expected + used, sizeof expected - used, "%s\"%s\"",
             i == 0 ? " " : (choices[i + 1] == NULL ? " or " : ", "), choices[i]);
  json_t *value = json_object_get(obj, key);
  if (value == NULL) return required ? profile_fail(ld, field, "missing, %s", expected) : 0;
  if (!json_is_string(value))
    return profile_fail(ld, field, "%s, got %s", expected, profile_json_type(value));
  for (int i = 0; choices[i] != NULL; i++) {
    if (strcmp(choices[i], json_string_value(value)) != 0) continue;
    *out = i;
    return 0;
  }
  return profile_fail(ld, field, "%s, got \"%s\"", expected, json_string_value(value));
}

/* Fetches obj[key] as an object; absent gives *out = NULL. */
static int get_object(const profile_loader_t *ld, json_t *obj, const char *key, json_t **out) {
  json_t *value = json_object_get(obj, key);
  *out = value;
  if (value != NULL && !json_is_object(value))
    return profile_fail(ld, key, "expected an object, got %s", profile_json_type(value));
  return 0;
}

/* Compiles pattern; the message quotes `shown` (the text as written in the profile). */
static int check_regex(const profile_loader_t *ld, const char *field, const char *pattern,
                       const char *shown) {
  regex_t re;
  rc_error_t why;
  if (rc_regex_compile(&re, pattern, REG_EXTENDED | REG_NOSUB, &why) != 0)
    return profile_fail(ld, field, "invalid POSIX extended regular expression \"%s\": %s", shown,
                        why.msg);
  regfree(&re); /* only after success: POSIX leaves it undefined after a failure */
  return 0;
}

/* Takes value (NULL when absent) as a string, checks it as flags say and copies it to
 * *dst (left NULL when absent). A template may also use the `extra` placeholders. */
int profile_take_template(const profile_loader_t *ld, json_t *value, const char *field, int flags,
                          const char *const *extra, char **dst) {
  const char *expected = (flags & FIELD_EMPTY_OK) ? "a string" : "a non-empty string";
  if (value == NULL)
    return (flags & FIELD_REQUIRED) ? profile_fail(ld, field, "missing, expected %s", expected) : 0;
  if (!json_is_string(value))
    return profile_fail(ld, field, "expected %s, got %s", expected, profile_json_type(value));
  const char *text = json_string_value(value);
  if (text[0] == '\0' && !(flags & FIELD_EMPTY_OK))
    return profile_fail(ld, field, "expected %s, got \"\"", expected);
  char *checked = NULL;
  if (flags & FIELD_TEMPLATE) {
    rc_error_t terr;
    size_t offset = 0;
    /* Any value will do to validate the regex the template becomes. */
    checked = profile_render(text, NULL, 0, "x", extra, &offset, &terr);
    if (checked == NULL) return profile_fail(ld, field, "%s", terr.msg);
  }
  const char *compiled = checked != NULL ? checked : text;
  int rc = (flags & FIELD_REGEX) ? check_regex(ld, field, compiled, text) : 0;
  free(checked);
  return rc != 0 ? -1 : profile_copy_string(ld, text, dst);
}

int profile_take_string(const profile_loader_t *ld, json_t *value, const char *field, int flags,
                        char **dst) {
  return profile_take_template(ld, value, field, flags, NULL, dst);
}

int profile_take_arg_templates(const profile_loader_t *ld, json_t *list, const char *field,
                               const char *const *extra, char ***dst, size_t *count) {
  if (!json_is_array(list) || json_array_size(list) == 0)
    return profile_fail(ld, field, "expected a non-empty array of argument templates, got %s",
                        json_is_array(list) ? "an empty array" : profile_json_type(list));
  *dst = calloc(json_array_size(list) + 1, sizeof **dst);
  if (*dst == NULL) return profile_fail(ld, NULL, "out of memory");
  size_t index;
  json_t *item;
  json_array_foreach(list, index, item) {
    char name[96];
    snprintf(name, sizeof name, "%s[%zu]", field, index);
    if (profile_take_template(ld, item, name, FIELD_TEMPLATE | FIELD_EMPTY_OK, extra,
                              &(*dst)[index]) != 0)
      return -1;
    *count = index + 1;
  }
  return 0;
}

/* ---------------------------------------------------------------------------------
 * Fields */

static int parse_era(const char *text, int parts[3]) {
  int count = 0;
  const char *p = text;
  parts[0] = parts[1] = parts[2] = 0;
  for (;;) {
    if (!isdigit((unsigned char)*p)) return -1;
    long value = 0;
    while (isdigit((unsigned char)*p)) {
      value = value * 10 + (*p - '0');
      if (value > PROFILE_ERA_PART_MAX) return -1;
      p++;
    }
    parts[count++] = (int)value;
    if (*p == '\0') break;
    if (*p != '.' || count == 3) return -1;
    p++;
  }
  return count >= 2 ? 0 : -1;
}

static bool era_before(const profile_t *p, int major, int minor) {
  return p->era_major < major || (p->era_major == major && p->era_minor < minor);
}

static int load_identity(const profile_loader_t *ld, json_t *root) {
  static const char *const dialects[] = {"2018", "modern", NULL};
  static const char *const transports[] = {"tcp", "redis", NULL};
  profile_t *p = ld->profile;
  json_t *format = json_object_get(root, "format");
  if (format == NULL) return profile_fail(ld, "format", "missing, expected the integer 1");
  if (!json_is_integer(format))
    return profile_fail(ld, "format", "expected the integer 1, got %s", profile_json_type(format));
  if (json_integer_value(format) != 1)
    return profile_fail(ld, "format", "unsupported format version %lld (this replcheck reads 1)",
                        (long long)json_integer_value(format));
  int dialect = 0, transport = 0, parts[3];
  if (profile_take_string(ld, json_object_get(root, "name"), "name", FIELD_REQUIRED, &p->name) !=
          0 ||
      profile_take_string(ld, json_object_get(root, "description"), "description", FIELD_EMPTY_OK,
                          &p->description) != 0 ||
      get_choice(ld, root, "dialect", "dialect", dialects, true, &dialect) != 0 ||
      get_choice(ld, root, "transport", "transport", transports, false, &transport) != 0 ||
      profile_take_string(ld, json_object_get(root, "era"), "era", FIELD_REQUIRED, &p->era) != 0)
    return -1;
  p->dialect = dialect == 0 ? PROTO_DIALECT_2018 : PROTO_DIALECT_MODERN;
  p->transport = transport == 0 ? PROFILE_TRANSPORT_TCP : PROFILE_TRANSPORT_REDIS;
  if (parse_era(p->era, parts) != 0)
    return profile_fail(ld, "era",
                        "expected a version \"MAJOR.MINOR[.PATCH]\" such as \"1.66\", got \"%s\"",
                        p->era);
  p->era_major = parts[0];
  p->era_minor = parts[1];
  p->era_patch = parts[2];

  /* The three facts only make sense together (replication-protocol.md §2.5): the 2018
   * grammar up to v1.12, Redis from v1.13 (modern only), direct TCP up to v1.66. */
  bool modern_era = !era_before(p, 1, 13);
  if (p->dialect == PROTO_DIALECT_2018 && p->transport == PROFILE_TRANSPORT_REDIS)
    return profile_fail(ld, "transport",
                        "\"redis\" needs dialect \"modern\" (Redis replication began in v1.13)");
  if (p->dialect == PROTO_DIALECT_2018 && modern_era)
    return profile_fail(
        ld, "era", "\"%s\" speaks the modern dialect (v1.13+), but 'dialect' is \"2018\"", p->era);
  if (p->dialect == PROTO_DIALECT_MODERN && !modern_era)
    return profile_fail(ld, "era",
                        "\"%s\" speaks the 2018 dialect (up to v1.12), but 'dialect' is \"modern\"",
                        p->era);
  if (p->transport == PROFILE_TRANSPORT_TCP && !era_before(p, 1, 67))
    return profile_fail(
        ld, "era",
        "\"%s\" has no direct TCP replication (gone in v1.67), but 'transport' is \"tcp\"", p->era);
  return 0;
}

static const char *const ROLE_NAMES[] = {
    "worker", "fedsender", "presence_writer", "sync", "client", "caches", "pg", NULL,
};
static const unsigned ROLE_BITS[] = {
    PROFILE_ROLE_WORKER, PROFILE_ROLE_FEDSENDER, PROFILE_ROLE_PRESENCE_WRITER,
    PROFILE_ROLE_SYNC,   PROFILE_ROLE_CLIENT,    PROFILE_ROLE_CACHES,
    PROFILE_ROLE_PG,
};

static int load_roles(const profile_loader_t *ld, json_t *root) {
  profile_t *p = ld->profile;
  json_t *instance = json_object_get(root, "instance_name");
  if (profile_take_string(ld, instance, "instance_name", 0, &p->instance_name) != 0) return -1;
  if (p->instance_name == NULL && profile_copy_string(ld, "worker1", &p->instance_name) != 0)
    return -1;
  for (const char *c = p->instance_name; *c != '\0'; c++) {
    /* The name travels space-separated on the wire (RDATA, POSITION, USER_SYNC). */
    if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c))
      return profile_fail(ld, "instance_name",
                          "must not contain spaces or control characters, got \"%s\"",
                          p->instance_name);
  }

  json_t *roles = json_object_get(root, "roles");
  if (roles == NULL) {
    p->roles = PROFILE_ROLE_WORKER;
    return 0;
  }
  char list[256];
  names_join(ROLE_NAMES, list, sizeof list);
  if (!json_is_array(roles))
    return profile_fail(ld, "roles", "expected an array of role names, got %s",
                        profile_json_type(roles));
  if (json_array_size(roles) == 0)
    return profile_fail(ld, "roles", "expected at least one role (known: %s)", list);
  size_t index;
  json_t *role;
  json_array_foreach(roles, index, role) {
    char field[64];
    snprintf(field, sizeof field, "roles[%zu]", index);
    if (!json_is_string(role))
      return profile_fail(ld, field, "expected a role name, got %s", profile_json_type(role));
    const char *name = json_string_value(role);
    size_t r = 0;
    while (ROLE_NAMES[r] != NULL && strcmp(ROLE_NAMES[r], name) != 0) r++;
    if (ROLE_NAMES[r] == NULL)
      return profile_fail(ld, field, "unknown role '%s' (known: %s)", name, list);
    if (p->roles & ROLE_BITS[r]) return profile_fail(ld, field, "role '%s' is listed twice", name);
    p->roles |= ROLE_BITS[r];
  }
  return 0;
}

static bool env_name_valid(const char *name) { return env_name_valid_n(name, strlen(name)); }

/* An argv template array at `field` ("command", "setup.command"): NULL-terminated in
 * *out, its length in *count. */
static int load_argv(const profile_loader_t *ld, json_t *command, const char *field, char ***out,
                     size_t *count) {
  if (!json_is_array(command) || json_array_size(command) == 0)
    return profile_fail(ld, field, "expected a non-empty array of strings, got %s",
                     command == NULL            ? "nothing"
                     : json_is_array(command) ? "an empty array"
                                              : profile_json_type(command));
  *out = calloc(json_array_size(command) + 1, sizeof **out);
  if (*out == NULL) return profile_fail(ld, NULL, "out of memory");
  for (size_t i = 0; i < json_array_size(command); i++) {
    char item[80];
    snprintf(item, sizeof item, "%s[%zu]", field, i);
    /* Arguments may be empty (e.g. an empty password); the program may not. */
    int flags = FIELD_TEMPLATE | (i > 0 ? FIELD_EMPTY_OK : 0);
    if (profile_take_string(ld, json_array_get(command, i), item, flags, &(*out)[i]) != 0) return -1;
    *count = i + 1;
  }
  return 0;
}

static int load_command_env(const profile_loader_t *ld, json_t *root) {
  profile_t *p = ld->profile;
  json_t *command = json_object_get(root, "command");
  if (command == NULL)
    return profile_fail(ld, "command", "missing, expected a non-empty array of strings");
  if (load_argv(ld, command, "command", &p->command, &p->command_count) != 0) return -1;

  json_t *env;
  if (get_object(ld, root, "env", &env) != 0 || env == NULL) return env == NULL ? 0 : -1;
  p->env_names = calloc(json_object_size(env) + 1, sizeof *p->env_names);
  p->env_values = calloc(json_object_size(env) + 1, sizeof *p->env_values);
  if (p->env_names == NULL || p->env_values == NULL) return profile_fail(ld, NULL, "out of memory");
  const char *name;
  json_t *value;
  json_object_foreach(env, name, value) {
    char field[300];
    snprintf(field, sizeof field, "env.%s", name);
    if (!env_name_valid(name))
      return profile_fail(
          ld, field,
          "not a valid environment variable name (expected letters, digits and '_', "
          "not starting with a digit)");
    if (profile_take_string(ld, json_object_get(env, name), field, FIELD_TEMPLATE | FIELD_EMPTY_OK,
                            &p->env_values[p->env_count]) != 0 ||
        profile_copy_string(ld, name, &p->env_names[p->env_count]) != 0)
      return -1;
    p->env_count++;
  }
  return 0;
}

/* A relative source is relative to the profile's directory. The directory becomes part
 * of a template, so its own braces are escaped. */
static char *config_source_resolve(const char *dir, const char *source) {
  char *data = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&data, &size);
  if (out == NULL) return NULL;
  bool starts_with_placeholder = source[0] == '{' && source[1] != '{';
  if (source[0] != '/' && !starts_with_placeholder) {
    for (const char *c = dir; *c != '\0'; c++) {
      fputc(*c, out);
      if (*c == '{' || *c == '}') fputc(*c, out);
    }
    fputc('/', out);
  }
  fputs(source, out);
  if (fclose(out) == 0) return data;
  free(data);
  return NULL;
}

/* A source path without placeholders can be checked now: it must be readable and its
 * content must use only known placeholders (it is expanded like every template). */
static int check_config_file(const profile_loader_t *ld, const char *field, const char *source_template) {
  rc_error_t terr;
  size_t offset = 0, len = 0;
  char *file_path = profile_render(source_template, NULL, 0, NULL, NULL, &offset, &terr);
  if (file_path == NULL) return 0; /* has placeholders: checked when expanded */
  char why[256];
  char *content = file_read_all(file_path, &len, why, sizeof why);
  int rc = 0;
  if (content == NULL) {
    rc = profile_fail(ld, field, "%s: %s", file_path, why);
  } else if (memchr(content, '\0', len) != NULL) {
    rc = profile_fail(ld, field, "%s: contains a NUL byte (not a text file)", file_path);
  } else {
    char *rendered = profile_render(content, NULL, 0, "x", NULL, &offset, &terr);
    size_t line = 1;
    for (size_t i = 0; rendered == NULL && i < offset && i < len; i++) line += content[i] == '\n';
    if (rendered == NULL) rc = profile_fail(ld, field, "%s:%zu: %s", file_path, line, terr.msg);
    free(rendered);
  }
  free(content);
  free(file_path);
  return rc;
}

/* A {"source", "output"} object at `prefix` (the SUT's config_template, or the
 * setup's). */
static int load_template_pair(const profile_loader_t *ld, json_t *config, const char *prefix,
                              char **template_out, char **output_out) {
  static const char *const keys[] = {"source", "output", NULL};
  char source_field[64], output_field[64];
  snprintf(source_field, sizeof source_field, "%s.source", prefix);
  snprintf(output_field, sizeof output_field, "%s.output", prefix);
  if (!json_is_object(config))
    return profile_fail(ld, prefix, "expected an object, got %s", profile_json_type(config));
  char *source = NULL;
  int rc = profile_check_keys(ld, config, prefix, keys);
  if (rc == 0)
    rc = profile_take_string(ld, json_object_get(config, "source"), source_field,
                     FIELD_REQUIRED | FIELD_TEMPLATE, &source);
  if (rc == 0)
    rc = profile_take_string(ld, json_object_get(config, "output"), output_field,
                     FIELD_REQUIRED | FIELD_TEMPLATE, output_out);
  if (rc == 0) {
    *template_out = config_source_resolve(ld->profile->dir, source);
    rc = *template_out == NULL ? profile_fail(ld, NULL, "out of memory")
                               : check_config_file(ld, source_field, *template_out);
  }
  free(source);
  return rc;
}

static int load_config_template(const profile_loader_t *ld, json_t *root) {
  profile_t *p = ld->profile;
  json_t *config = json_object_get(root, "config_template");
  if (config == NULL) return 0;
  return load_template_pair(ld, config, "config_template", &p->config_template, &p->config_output);
}

/* "http.paths": the paths the http suite requests under http.url. */
static int load_http_paths(const profile_loader_t *ld, json_t *paths) {
  profile_t *p = ld->profile;
  if (paths == NULL) return 0;
  if (p->http_url == NULL) return profile_fail(ld, "http.paths", "only meaningful with http.url");
  if (!json_is_array(paths) || json_array_size(paths) == 0)
    return profile_fail(ld, "http.paths", "expected a non-empty array of paths, got %s",
                        json_is_array(paths) ? "an empty array" : profile_json_type(paths));
  p->http_paths = calloc(json_array_size(paths) + 1, sizeof *p->http_paths);
  if (p->http_paths == NULL) return profile_fail(ld, NULL, "out of memory");
  size_t index;
  json_t *item;
  json_array_foreach(paths, index, item) {
    char field[64];
    snprintf(field, sizeof field, "http.paths[%zu]", index);
    if (profile_take_string(ld, item, field, FIELD_REQUIRED, &p->http_paths[index]) != 0) return -1;
    p->http_path_count = index + 1;
    const char *path = p->http_paths[index];
    if (path[0] != '/' || strcspn(path, " \t\r\n") != strlen(path))
      return profile_fail(ld, field,
                          "expected a path starting with '/' and without blanks, got \"%s\"", path);
  }
  return 0;
}

/* A URL template (NULL = absent, fine) must be http:// or https://. */
int profile_check_url(const profile_loader_t *ld, const char *field, const char *url) {
  if (url == NULL || strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) return 0;
  return profile_fail(ld, field, "expected an http:// or https:// URL, got \"%s\"", url);
}

static int load_observation(const profile_loader_t *ld, json_t *root) {
  static const char *const readiness_keys[] = {"kind", "pattern", NULL};
  static const char *const readiness_kinds[] = {"connect", "log", NULL};
  static const char *const log_keys[] = {"path", "format", "context_field", NULL};
  static const char *const log_formats[] = {"synapse-text", "json-lines", NULL};
  static const char *const metrics_keys[] = {"url", NULL};
  static const char *const http_keys[] = {"url", "server_header_regex", "paths", NULL};
  profile_t *p = ld->profile;
  json_t *obj;

  int kind = 0;
  if (get_object(ld, root, "readiness", &obj) != 0) return -1;
  if (obj != NULL &&
      (profile_check_keys(ld, obj, "readiness", readiness_keys) != 0 ||
       get_choice(ld, obj, "kind", "readiness.kind", readiness_kinds, true, &kind) != 0 ||
       profile_take_string(ld, json_object_get(obj, "pattern"), "readiness.pattern",
                           FIELD_TEMPLATE | FIELD_REGEX, &p->readiness_pattern) != 0))
    return -1;
  p->readiness_kind = kind == 0 ? PROFILE_READY_CONNECT : PROFILE_READY_LOG;
  if (p->readiness_kind == PROFILE_READY_LOG && p->readiness_pattern == NULL)
    return profile_fail(ld, "readiness.pattern",
                        "missing, kind \"log\" needs a POSIX extended regular expression");
  if (p->readiness_kind == PROFILE_READY_CONNECT && p->readiness_pattern != NULL)
    return profile_fail(ld, "readiness.pattern", "only meaningful with kind \"log\"");

  int format = 0;
  if (get_object(ld, root, "log", &obj) != 0) return -1;
  if (obj != NULL &&
      (profile_check_keys(ld, obj, "log", log_keys) != 0 ||
       profile_take_string(ld, json_object_get(obj, "path"), "log.path", FIELD_TEMPLATE,
                           &p->log_path) != 0 ||
       get_choice(ld, obj, "format", "log.format", log_formats, false, &format) != 0 ||
       profile_take_string(ld, json_object_get(obj, "context_field"), "log.context_field", 0,
                           &p->log_context_field) != 0))
    return -1;
  p->log_format = format == 0 ? PROFILE_LOG_SYNAPSE_TEXT : PROFILE_LOG_JSON_LINES;
  if (p->log_context_field != NULL && p->log_format != PROFILE_LOG_JSON_LINES)
    return profile_fail(ld, "log.context_field",
                        "only meaningful with format \"json-lines\" (the synapse-text format has a "
                        "fixed context column)");
  if (p->log_context_field == NULL &&
      profile_copy_string(ld, "request", &p->log_context_field) != 0)
    return -1;

  if (get_object(ld, root, "metrics", &obj) != 0) return -1;
  if (obj != NULL && (profile_check_keys(ld, obj, "metrics", metrics_keys) != 0 ||
                      profile_take_string(ld, json_object_get(obj, "url"), "metrics.url",
                                          FIELD_REQUIRED | FIELD_TEMPLATE, &p->metrics_url) != 0))
    return -1;
  if (profile_check_url(ld, "metrics.url", p->metrics_url) != 0) return -1;

  if (get_object(ld, root, "http", &obj) != 0) return -1;
  if (obj == NULL) return 0;
  if (profile_check_keys(ld, obj, "http", http_keys) != 0 ||
      profile_take_string(ld, json_object_get(obj, "url"), "http.url", FIELD_TEMPLATE,
                          &p->http_url) != 0 ||
      profile_check_url(ld, "http.url", p->http_url) != 0 ||
      profile_take_string(ld, json_object_get(obj, "server_header_regex"),
                          "http.server_header_regex", FIELD_REGEX, &p->server_header) != 0)
    return -1;
  if (p->http_url == NULL && p->server_header == NULL)
    return profile_fail(ld, "http", "expected at least one of 'url' and 'server_header_regex'");
  return load_http_paths(ld, json_object_get(obj, "paths"));
}

static int load_timing(const profile_loader_t *ld, json_t *root) {
  profile_t *p = ld->profile;
  profile_timing_t *t = &p->timing;
  /* Synapse's own values for the declared era and transport (replication-protocol.md
   * §3.1, §3.4), so a profile of a stock Synapse needs no timing block. */
  bool fast_reconnect = p->transport == PROFILE_TRANSPORT_TCP && !era_before(p, 1, 8);
  *t = (profile_timing_t){
      .ping_interval_ms = 5000,
      .ping_timeout_ms = 25000,
      .reconnect_initial_ms = fast_reconnect ? 100 : 1000,
      .reconnect_max_ms = fast_reconnect ? 1000 : 5000,
      .startup_timeout_ms = 10000,
      .shutdown_grace_ms = 5000,
      .federation_delivery_ms = 5000,
  };
  static const char *const keys[] = {
      "ping_interval_ms",   "ping_timeout_ms",   "reconnect_initial_ms",   "reconnect_max_ms",
      "startup_timeout_ms", "shutdown_grace_ms", "federation_delivery_ms", NULL};
  int *const slots[] = {&t->ping_interval_ms,      &t->ping_timeout_ms,    &t->reconnect_initial_ms,
                        &t->reconnect_max_ms,      &t->startup_timeout_ms, &t->shutdown_grace_ms,
                        &t->federation_delivery_ms};
  json_t *timing;
  if (get_object(ld, root, "timing", &timing) != 0) return -1;
  if (timing == NULL) return 0;
  if (profile_check_keys(ld, timing, "timing", keys) != 0) return -1;
  for (size_t i = 0; keys[i] != NULL; i++) {
    json_t *value = json_object_get(timing, keys[i]);
    if (value == NULL) continue;
    char field[64];
    snprintf(field, sizeof field, "timing.%s", keys[i]);
    if (!json_is_integer(value))
      return profile_fail(ld, field, "expected a positive integer, got %s",
                          profile_json_type(value));
    json_int_t ms = json_integer_value(value);
    if (ms < PROFILE_TIMING_MIN_MS || ms > PROFILE_TIMING_MAX_MS)
      return profile_fail(ld, field, "expected an integer in %d..%d (milliseconds), got %lld",
                          PROFILE_TIMING_MIN_MS, PROFILE_TIMING_MAX_MS, (long long)ms);
    *slots[i] = (int)ms;
  }
  if (t->reconnect_initial_ms > t->reconnect_max_ms) {
    bool initial_given = json_object_get(timing, "reconnect_initial_ms") != NULL;
    return profile_fail(
        ld, initial_given ? "timing.reconnect_initial_ms" : "timing.reconnect_max_ms",
        "reconnect_initial_ms (%d%s) must not exceed reconnect_max_ms (%d)",
        t->reconnect_initial_ms, initial_given ? "" : ", the era's default", t->reconnect_max_ms);
  }
  return 0;
}

static int load_opt_outs(const profile_loader_t *ld, json_t *root) {
  static const char *const keys[] = {"test", "reason", NULL};
  profile_t *p = ld->profile;
  json_t *list = json_object_get(root, "opt_out");
  if (list == NULL) return 0;
  if (!json_is_array(list))
    return profile_fail(ld, "opt_out",
                        "expected an array of {\"test\", \"reason\"} objects, got %s",
                        profile_json_type(list));
  p->opt_outs = calloc(json_array_size(list) + 1, sizeof *p->opt_outs);
  if (p->opt_outs == NULL) return profile_fail(ld, NULL, "out of memory");
  size_t index;
  json_t *item;
  json_array_foreach(list, index, item) {
    char field[64], test_field[80], reason_field[80];
    snprintf(field, sizeof field, "opt_out[%zu]", index);
    snprintf(test_field, sizeof test_field, "%s.test", field);
    snprintf(reason_field, sizeof reason_field, "%s.reason", field);
    if (!json_is_object(item))
      return profile_fail(ld, field, "expected an object {\"test\": ..., \"reason\": ...}, got %s",
                          profile_json_type(item));
    profile_opt_out_t *entry = &p->opt_outs[index];
    if (profile_check_keys(ld, item, field, keys) != 0 ||
        profile_take_string(ld, json_object_get(item, "test"), test_field, FIELD_REQUIRED,
                            &entry->pattern) != 0 ||
        profile_take_string(ld, json_object_get(item, "reason"), reason_field, FIELD_REQUIRED,
                            &entry->reason) != 0)
      return -1;
    p->opt_out_count++;
  }
  return 0;
}

/* "setup": a command run before the SUT, once per run or before each test. A per-run
 * step runs before any mock exists, so its templates may use only the placeholders
 * PROFILE_SETUP_RUN_PLACEHOLDERS names (and {env:NAME}). */
const char *const PROFILE_SETUP_RUN_PLACEHOLDERS[] = {
    "work_dir", "bin_dir", "profile_dir", "instance_name", "db_dsn",
    "db_host",  "db_port", "db_name",     "db_user",       NULL,
};

static int check_setup_run_template(const profile_loader_t *ld, const char *field, const char *text) {
  profile_var_t vars[16];
  size_t n = 0;
  for (; PROFILE_SETUP_RUN_PLACEHOLDERS[n] != NULL; n++)
    vars[n] = (profile_var_t){PROFILE_SETUP_RUN_PLACEHOLDERS[n], "x"};
  rc_error_t why;
  size_t offset = 0;
  char *out = profile_render(text, vars, n, NULL, NULL, &offset, &why);
  if (out != NULL || strstr(why.msg, "environment variable") != NULL) {
    free(out);
    return 0; /* {env:NAME} is checked when the step runs */
  }
  return profile_fail(ld, field, "%s (a setup with \"per\": \"run\" runs before the mock exists)",
                   why.msg);
}

static int load_setup(const profile_loader_t *ld, json_t *root) {
  static const char *const keys[] = {"command", "per", "timeout_ms", "stop_on",
                                     "config_template", NULL};
  static const char *const pers[] = {"run", "test", NULL};
  profile_setup_t *s = &ld->profile->setup;
  s->timeout_ms = PROFILE_SETUP_DEFAULT_TIMEOUT_MS;
  json_t *setup;
  if (get_object(ld, root, "setup", &setup) != 0 || setup == NULL) return setup == NULL ? 0 : -1;
  if (profile_check_keys(ld, setup, "setup", keys) != 0) return -1;
  int per = 0;
  if (get_choice(ld, setup, "per", "setup.per", pers, false, &per) != 0) return -1;
  s->per_test = per == 1;
  if (load_argv(ld, json_object_get(setup, "command"), "setup.command", &s->command,
                &s->command_count) != 0)
    return -1;
  for (size_t i = 0; !s->per_test && i < s->command_count; i++) {
    char field[64];
    snprintf(field, sizeof field, "setup.command[%zu]", i);
    if (check_setup_run_template(ld, field, s->command[i]) != 0) return -1;
  }
  if (profile_take_string(ld, json_object_get(setup, "stop_on"), "setup.stop_on",
                  FIELD_TEMPLATE | FIELD_REGEX, &s->stop_on) != 0)
    return -1;
  if (s->stop_on != NULL && !s->per_test &&
      check_setup_run_template(ld, "setup.stop_on", s->stop_on) != 0)
    return -1;
  json_t *config = json_object_get(setup, "config_template");
  if (config != NULL && load_template_pair(ld, config, "setup.config_template",
                                           &s->config_template, &s->config_output) != 0)
    return -1;
  json_t *timeout = json_object_get(setup, "timeout_ms");
  if (timeout != NULL) {
    if (!json_is_integer(timeout) || json_integer_value(timeout) < PROFILE_TIMING_MIN_MS ||
        json_integer_value(timeout) > PROFILE_TIMING_MAX_MS)
      return profile_fail(ld, "setup.timeout_ms", "expected an integer in %d..%d (milliseconds)",
                       PROFILE_TIMING_MIN_MS, PROFILE_TIMING_MAX_MS);
    s->timeout_ms = (int)json_integer_value(timeout);
  }
  return 0;
}

/* "positions": {"stream": token}: the positions the mock announces for streams, so
 * that they match what a SUT with state of its own (a database) starts from. */
static int load_positions(const profile_loader_t *ld, json_t *root) {
  profile_t *p = ld->profile;
  json_t *obj;
  if (get_object(ld, root, "positions", &obj) != 0 || obj == NULL) return obj == NULL ? 0 : -1;
  p->positions = calloc(json_object_size(obj) + 1, sizeof *p->positions);
  if (p->positions == NULL) return profile_fail(ld, NULL, "out of memory");
  const char *name;
  json_t *value;
  json_object_foreach(obj, name, value) {
    char field[300];
    snprintf(field, sizeof field, "positions.%.200s", name);
    if (name[0] == '\0' || strpbrk(name, " \t\r\n") != NULL)
      return profile_fail(ld, field, "a stream name has no blanks and is not empty");
    if (!json_is_integer(value) || json_integer_value(value) < 0)
      return profile_fail(ld, field, "expected a non-negative integer (the stream token), got %s",
                       json_is_integer(value) ? "a negative integer" : profile_json_type(value));
    if (profile_copy_string(ld, name, &p->positions[p->position_count].stream) != 0) return -1;
    p->positions[p->position_count++].position = json_integer_value(value);
  }
  return 0;
}

/* ---------------------------------------------------------------------------------
 * Public API */

static const char *const TOP_LEVEL_KEYS[] = {
    "format", "name",    "description", "dialect",         "transport", "era", "instance_name",
    "roles",  "command", "env",         "config_template", "readiness", "log", "metrics",
    "http",   "caches",  "fedsender",   "timing",          "opt_out",   "setup", "positions",
    "database", "client", NULL,
};

static char *profile_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  if (slash == NULL)
    dir = strdup(".");
  else if (slash == path)
    dir = strdup("/");
  else
    dir = strndup(path, (size_t)(slash - path));
  if (dir == NULL) return NULL;
  /* Absolute, because {profile_dir} is used by a SUT running in another directory. */
  char *absolute = realpath(dir, NULL);
  if (absolute == NULL) return dir;
  free(dir);
  return absolute;
}

profile_t *profile_load(const char *path, rc_error_t *err) {
  if (path == NULL || path[0] == '\0') {
    rc_error_set(err, "no profile path given");
    return NULL;
  }
  char why[256];
  size_t len = 0;
  char *text = file_read_all(path, &len, why, sizeof why);
  if (text == NULL) {
    rc_error_set(err, "%s: %s", path, why);
    return NULL;
  }
  json_error_t jerr;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  free(text);
  if (root == NULL) {
    rc_error_set(err, "%s:%d:%d: JSON syntax error: %s", path, jerr.line, jerr.column, jerr.text);
    return NULL;
  }
  profile_t *profile = calloc(1, sizeof *profile);
  profile_loader_t ld = {.path = path, .err = err, .profile = profile};
  int rc = -1;
  if (profile == NULL) {
    rc_error_set(err, "%s: out of memory", path);
  } else if (!json_is_object(root)) {
    profile_fail(&ld, NULL, "expected a JSON object at the top level, got %s",
                 profile_json_type(root));
  } else if (profile_copy_string(&ld, path, &profile->path) == 0) {
    profile->dir = profile_dir_of(path);
    if (profile->dir == NULL)
      profile_fail(&ld, NULL, "out of memory");
    else if (profile_check_keys(&ld, root, NULL, TOP_LEVEL_KEYS) == 0 && load_identity(&ld, root) == 0 &&
             load_roles(&ld, root) == 0 && load_command_env(&ld, root) == 0 &&
             load_config_template(&ld, root) == 0 && load_observation(&ld, root) == 0 &&
             profile_load_caches(&ld, root) == 0 && profile_load_fedsender(&ld, root) == 0 &&
             profile_load_client(&ld, root) == 0 &&
             load_timing(&ld, root) == 0 && load_opt_outs(&ld, root) == 0 &&
             load_setup(&ld, root) == 0 && load_positions(&ld, root) == 0 &&
             profile_database_load(profile, root, err) == 0)
      rc = 0;
  }
  json_decref(root);
  if (rc != 0) {
    profile_destroy(profile);
    return NULL;
  }
  return profile;
}

void profile_destroy(profile_t *profile) {
  if (profile == NULL) return;
  free(profile->path);
  free(profile->dir);
  free(profile->name);
  free(profile->description);
  free(profile->era);
  free(profile->instance_name);
  /* The arrays are NULL-terminated, so a half-loaded profile frees cleanly too. */
  for (size_t i = 0; profile->command != NULL && profile->command[i] != NULL; i++)
    free(profile->command[i]);
  free(profile->command);
  for (size_t i = 0; profile->env_names != NULL && profile->env_names[i] != NULL; i++)
    free(profile->env_names[i]);
  for (size_t i = 0; profile->env_values != NULL && profile->env_values[i] != NULL; i++)
    free(profile->env_values[i]);
  free(profile->env_names);
  free(profile->env_values);
  free(profile->config_template);
  free(profile->config_output);
  free(profile->readiness_pattern);
  free(profile->log_path);
  free(profile->log_context_field);
  free(profile->metrics_url);
  free(profile->server_header);
  free(profile->http_url);
  for (size_t i = 0; i < profile->http_path_count; i++) free(profile->http_paths[i]);
  free(profile->http_paths);
  profile_free_caches(profile);
  profile_free_fedsender(profile);
  profile_free_client(profile);
  for (size_t i = 0; profile->opt_outs != NULL && profile->opt_outs[i].pattern != NULL; i++) {
    free(profile->opt_outs[i].pattern);
    free(profile->opt_outs[i].reason);
  }
  free(profile->opt_outs);
  for (size_t i = 0; profile->setup.command != NULL && profile->setup.command[i] != NULL; i++)
    free(profile->setup.command[i]);
  free(profile->setup.command);
  free(profile->setup.stop_on);
  free(profile->setup.config_template);
  free(profile->setup.config_output);
  for (size_t i = 0; profile->positions != NULL && profile->positions[i].stream != NULL; i++)
    free(profile->positions[i].stream);
  free(profile->positions);
  free(profile);
}

const char *profile_opt_out_reason(const profile_t *profile, const char *test_id) {
  if (profile == NULL || test_id == NULL) return NULL;
  for (size_t i = 0; profile->opt_outs != NULL && profile->opt_outs[i].pattern != NULL; i++) {
    /* No FNM_PATHNAME, so a * also matches / and one glob covers a whole suite. */
    if (fnmatch(profile->opt_outs[i].pattern, test_id, 0) == 0) return profile->opt_outs[i].reason;
  }
  return NULL;
}

const char *profile_transport_name(profile_transport_t transport) {
  if (transport == PROFILE_TRANSPORT_TCP) return "tcp";
  return transport == PROFILE_TRANSPORT_REDIS ? "redis" : "unknown";
}
