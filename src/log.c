/*
 * log.c -- log lines of the sender thread.  Bounded formatting into a stack
 * buffer, no allocation.  Callers never pass the API key.
 */
#include <stdarg.h>
#include <stdio.h>

#include "client.h"

void sg_log(struct segops_client *c, int level, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    c->cfg.logger(c->cfg.logger_user, level, line);
}

