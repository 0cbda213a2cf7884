/* tn_code.c — names of result codes (see tn_code.h). */
#include "tn_code.h"

#include <stdio.h>

const char *tn_code_name(int code)
{
    switch (code) {
#define TN_CODE_CASE(name, num) case num: return #name;
        TN_CODES(TN_CODE_CASE)
#undef TN_CODE_CASE
    }
    return "UNKNOWN";
}

void tn_verrf(char *buf, size_t cap, const char *fmt, va_list ap)
{
    if (buf && cap) vsnprintf(buf, cap, fmt, ap);
}

void tn_errf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tn_verrf(buf, cap, fmt, ap);
    va_end(ap);
}
