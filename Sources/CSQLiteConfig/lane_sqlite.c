#include "lane_sqlite.h"
#include <stdio.h>

int lane_sqlite_no_checkpoint_on_close(sqlite3 *db) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}

int lane_format_seconds(char *buffer, unsigned long size, double seconds) {
    return snprintf(buffer, size, "%.6f", seconds);
}
