/* sql_code.c — see sql_code.h. */
#include <sqlite3ext.h>

#include "sql_code.h"

#include "tn_code.h"

int tn_code_to_sqlite(int code)
{
    switch (code) {
    case TN_SUCCESS:
    case TN_SUCCESS_OVERWRITE:
        return SQLITE_OK;
    case TN_ROW_EXISTS:
    case TN_VALUE_EXISTS:
    case TN_DIR_EXISTS:
    case TN_HAS_CHILDREN:
        return SQLITE_CONSTRAINT;
    case TN_REVISION_MISMATCH:
    case TN_TXN_CONFLICT:
    case TN_CAS_MISMATCH:
    case TN_NOT_LEADER:
    case TN_UNAVAILABLE:
    case TN_TIMEOUT:
        return SQLITE_BUSY;
    case TN_NOT_OWNER:
        return SQLITE_PERM;
    case TN_TOO_LARGE:
        return SQLITE_TOOBIG;
    case TN_NOMEM:
        return SQLITE_NOMEM;
    default:
        return SQLITE_ERROR;
    }
}
