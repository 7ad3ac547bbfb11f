// Why C: sqlite3_db_config is variadic, so Swift cannot call it.
#ifndef LANE_SQLITE_H
#define LANE_SQLITE_H
#include <sqlite3.h>

/// Stops SQLite from checkpointing the WAL when the last connection closes: every `lanes run`
/// is a short process, and a checkpoint (page copy + fsync of the database) at each exit would
/// double the journal's cost per step. The WAL is checkpointed by later commits instead
/// (wal_autocheckpoint), so it stays bounded. Returns an SQLite result code.
int lane_sqlite_no_checkpoint_on_close(sqlite3 *db);

/// Writes `seconds` as printf's "%.6f" into `buffer` (NUL-terminated); returns the length.
/// Why C: a record's hash covers its time printed exactly this way (journals written so far
/// depend on it), and from Swift the variadic printf family is reached only through
/// `withVaList`, whose `CVarArg` boxing costs a runtime conformance lookup in every new process.
int lane_format_seconds(char *buffer, unsigned long size, double seconds);
#endif
