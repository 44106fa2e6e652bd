/* profile_internal: the loader helpers shared by profile.c and the files that parse one
 * part of a profile (profile_caches.c, profile_fedsender.c). Not for use outside the
 * profile loader. Every helper reports through the loader's error, naming the file
 * and the field ("<path>: field 'caches[0].name': ..."), and returns -1 on failure. */
#ifndef PROFILE_INTERNAL_H
#define PROFILE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

#include "profile.h"

#define PROFILE_TIMING_MIN_MS 1
#define PROFILE_TIMING_MAX_MS 3600000
/* Room for every PROFILE_PLACEHOLDERS entry (14 today) in a vars array. */
#define PROFILE_PLACEHOLDER_MAX 32

typedef struct profile_loader {
  const char *path;
  rc_error_t *err;
  profile_t *profile; /* being filled; profile_destroy frees it half-loaded too */
} profile_loader_t;

/* Flags of profile_take_template / profile_take_string. */
enum {
  FIELD_REQUIRED = 1 << 0,
  FIELD_TEMPLATE = 1 << 1, /* may hold placeholders: checked against the known list */
  FIELD_REGEX = 1 << 2,    /* a POSIX ERE (after filling placeholders when templated) */
  FIELD_EMPTY_OK = 1 << 3,
};

/* "<path>: field '<field>': <message>", or "<path>: <message>" when field is NULL.
 * Returns -1. */
int profile_fail(const profile_loader_t *ld, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "object", "array", ... for messages. */
const char *profile_json_type(const json_t *value);
int profile_copy_string(const profile_loader_t *ld, const char *text, char **dst);
/* Rejects members of obj not in known (NULL-terminated); prefix is obj's field path. */
int profile_check_keys(const profile_loader_t *ld, json_t *obj, const char *prefix,
                       const char *const *known);
/* value (NULL when absent) as a string checked as flags say, copied to *dst; a
 * template may also use the `extra` placeholders (NULL-terminated, or NULL). */
int profile_take_template(const profile_loader_t *ld, json_t *value, const char *field, int flags,
                          const char *const *extra, char **dst);
int profile_take_string(const profile_loader_t *ld, json_t *value, const char *field, int flags,
                        char **dst);
/* A non-empty array of argv templates (argv elements appended per remote, per user...)
 * that may also use the `extra` placeholders, into a NULL-terminated *dst (freed by the
 * caller's free function, also when half filled) and *count. */
int profile_take_arg_templates(const profile_loader_t *ld, json_t *list, const char *field,
                               const char *const *extra, char ***dst, size_t *count);
/* A URL template (NULL = absent, fine) must be http:// or https://. */
int profile_check_url(const profile_loader_t *ld, const char *field, const char *url);
/* Renders a template: {name} from vars, or every known/extra placeholder as `fill`
 * when fill is non-NULL (validation). NULL with err and *err_offset on a bad brace or
 * an unknown placeholder. The caller frees the result. */
char *profile_render(const char *text, const profile_var_t *vars, size_t var_count,
                     const char *fill, const char *const *extra, size_t *err_offset,
                     rc_error_t *err);

/* "caches" (profile_caches.c): required with role caches, refused without it. */
int profile_load_caches(const profile_loader_t *ld, json_t *root);
void profile_free_caches(profile_t *profile);

/* "fedsender" (profile_fedsender.c): required with role fedsender, refused without. */
int profile_load_fedsender(const profile_loader_t *ld, json_t *root);
void profile_free_fedsender(profile_t *profile);

/* "client" (profile_client.c): required with roles sync or client, refused without. */
int profile_load_client(const profile_loader_t *ld, json_t *root);
void profile_free_client(profile_t *profile);

#endif
