/* SPDX-License-Identifier: MIT */
/*
 * fuzz_json_validate.c -- sg_json_validate on arbitrary bytes, with the
 * depth bound and container_only taken from the first byte.  Surrounding
 * whitespace must not change the verdict.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[1 << 16];
    int depth, conly, a, b;

    if (size == 0)
        return 0;
    depth = data[0] & 0x3F;
    if (data[0] & 0x80)
        depth = SG_JSON_MAX_DEPTH;
    conly = (data[0] >> 6) & 1;
    data++;
    size--;
    a = sg_json_validate((const char *)data, size, depth, conly);
    if (size + 2 > sizeof buf)
        return 0;
    buf[0] = ' ';
    memcpy(buf + 1, data, size);
    buf[size + 1] = '\n';
    b = sg_json_validate(buf, size + 2, depth, conly);
    if (a != b)
        abort();
    return 0;
}
