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

const char *tn_kv_code_reason(int code)
{
    switch (code) {
    case TN_VALUE_EXISTS: return "already exists";
    case TN_DIR_EXISTS: return "is a directory that already exists";
    case TN_HAS_CHILDREN: return "is not empty";
    case TN_REVISION_MISMATCH: return "changed since it was read";
    case TN_CAS_MISMATCH: return "does not hold the expected value";
    case TN_NOT_FOUND: return "does not exist";
    case TN_PARENT_DIR_NOT_EXISTS: return "has no parent directory";
    case TN_PARENT_NOT_DIR: return "has a parent that is not a directory";
    case TN_INVALID_KEY: return "is not a valid key";
    case TN_INVALID_VALUE: return "needs a non-empty value";
    case TN_KEY_TOO_LONG: return "is too long a key";
    case TN_VALUE_TOO_LONG: return "has too long a value";
    case TN_NOT_OWNER: return "is a temp node owned by another session";
    case TN_NOT_TEMP_NODE: return "is not a temp node";
    case TN_IS_TEMP_NODE: return "is a temp node (give ttl_ms to change it)";
    case TN_INVALID_TTL: return "was given an invalid ttl_ms";
    case TN_UNDER_TEMP_DIR: return "is under a temp directory (only temp nodes may go there)";
    default: return "failed";
    }
}
