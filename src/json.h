/* SPDX-License-Identifier: MIT */
/*
 * json.h -- internal: the JSON writer (escaping, UTF-8 repair, numbers) and
 * the bounded validator used for raw-JSON properties.  No allocation, no
 * I/O; every output buffer is the caller's and its required size is stated.
 */
#ifndef SG_JSON_H
#define SG_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Worst-case output of sg_json_write_str() for `len` input bytes,
 * including both quotes: every byte may become a 6-byte \u00XX escape. */
#define SG_JSON_STR_MAX(len) (2 + 6 * (size_t)(len))
/* Buffer sizes that always suffice for the number writers. */
#define SG_JSON_I64_MAX 21
#define SG_JSON_F64_MAX 32

/* Writes s[0..len) as a JSON string with quotes into out, which MUST hold
 * SG_JSON_STR_MAX(len) bytes.  Escapes '"', '\\', and every byte < 0x20
 * (\b \f \n \r \t short forms, others \u00XX); also escapes 0x7F and
 * U+2028/U+2029 as \u....  Valid UTF-8 is copied; every maximal invalid
 * subsequence (overlong, surrogate, > U+10FFFF, truncated) becomes U+FFFD.
 * Returns the number of bytes written. */
size_t sg_json_write_str(char *out, const char *s, size_t len);

/* Writes v in decimal into out (>= SG_JSON_I64_MAX bytes); returns bytes. */
size_t sg_json_write_i64(char *out, int64_t v);

/* Writes finite v as a JSON number that parses back to the same double
 * (shortest of %.15g/%.16g/%.17g that round-trips; -0.0 is written "-0").
 * Locale-independent (never a ',' decimal point).  out >= SG_JSON_F64_MAX.
 * Returns bytes written, 0 if v is not finite (caller must check first). */
size_t sg_json_write_f64(char *out, double v);

/* Validates that s[0..len) is exactly one JSON value (RFC 8259) with
 * optional surrounding whitespace: strict grammar, strings must be valid
 * UTF-8 with no raw control bytes, nesting depth <= max_depth.
 * If container_only is non-zero the value must be an object or array.
 * Nesting beyond 1024 levels is refused whatever max_depth says.
 * Returns 0 if valid, -1 otherwise.  Never reads past s+len. */
int sg_json_validate(const char *s, size_t len, int max_depth, int container_only);

/* Depth bound used for raw-JSON properties. */
#define SG_JSON_MAX_DEPTH 64

#endif
