/* tn_code.c — names of result codes (see tn_code.h). */
#include "tn_code.h"

const char *tn_code_name(int code)
{
    switch (code) {
#define TN_CODE_CASE(name, num) case num: return #name;
        TN_CODES(TN_CODE_CASE)
#undef TN_CODE_CASE
    }
    return "UNKNOWN";
}
