import CSQLiteConfig

/// The journal's write path: its own SQLite connection, driven through SQLite's C API.
///
/// Why not GRDB here: every `lanes run` is a fresh process. GRDB's connection set-up (authorizer,
/// default functions and collations) and its generic fetching and binding (`Row`,
/// `StatementArguments`, `DatabaseValueConvertible`) cost Swift runtime work on first use —
/// type-metadata and protocol-conformance lookups across the static binary — that was more than
/// the SQL itself (docs/journal.md, "Cost per step"). GRDB still creates and migrates the schema
/// and serves every read (`SQLiteJournal.databaseQueue()`), on a connection opened only when
/// needed.
///
/// Statements are prepared once per connection (`SQLITE_PREPARE_PERSISTENT`) and reset after
/// each use. Not thread-safe: used only by the group-commit leader, inside the journal's
/// exclusive section (`GroupCommit.exclusive`).
final class SQLiteStatements {
    private let db: OpaquePointer
    /// Prepared statements by `Statement.slot`. An array, not a dictionary keyed by `Statement`:
    /// the dictionary's storage made the Swift runtime scan the static binary's protocol
    /// conformances (for `Statement: Hashable`) in every `lanes run`, ~80 µs (docs/benchmarks.md,
    /// stop 11).
    private var prepared = [OpaquePointer?](repeating: nil, count: Statement.allCases.count)

    /// Opens the connection: WAL (set by the migration, persistent in the file), `synchronous =
    /// FULL`, checkpoints every `walCheckpointPages` pages, none when the connection closes, and
    /// a 120 s busy timeout behind the journal's own write lock.
    init(path: String, walCheckpointPages: Int) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &handle, flags, nil) == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw JournalError(.unavailable, "cannot open \(path): \(message)")
        }
        db = handle
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 120_000)
        _ = lane_sqlite_no_checkpoint_on_close(db)
        do {
            try execute("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = \(walCheckpointPages)")
        } catch {
            sqlite3_close_v2(db)
            throw error
        }
    }

    deinit {
        finalizeAll()
        sqlite3_close_v2(db)
    }

    /// `PRAGMA user_version`: the schema version the journal file says it has.
    func userVersion() throws -> Int { try first(.userVersion, []) { $0.int(0) } ?? 0 }

    /// The write path's SQL, one case per statement.
    enum Statement: String, CaseIterable {
        case userVersion = "PRAGMA user_version"
        case runRow = "SELECT head_seq, head_hash, next_ordinal, verified_epoch, state_seq, state FROM runs WHERE id = ?"
        case insertRun = "INSERT INTO runs (id, lane, created_at, head_seq, head_hash, next_ordinal, verified_epoch) VALUES (?, ?, ?, 0, ?, 1, ?)"
        case updateRun = "UPDATE runs SET head_seq = ?, head_hash = ?, next_ordinal = ?, verified_epoch = ?, state_seq = ?, state = ? WHERE id = ?"
        case insertRecord = "INSERT INTO records (run, seq, kind, step, at, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        case recordBySeq = "SELECT run, seq, kind, step, at, body, prev_hash, hash FROM records WHERE run = ? AND seq = ?"
        case recordsOfRun = "SELECT run, seq, kind, step, at, body, prev_hash, hash FROM records WHERE run = ? ORDER BY seq"
        case deleteKeys = "DELETE FROM intent_keys WHERE run = ?"
        // Queries by step name their index: without statistics SQLite may walk the run's primary
        // key instead and read every record of the run (seen: 440 page reads per step at 1,000
        // steps), which made each step's cost grow with its run.
        case lastStepRecord = "SELECT run, seq, kind, step, at, body, prev_hash, hash FROM records INDEXED BY records_by_step WHERE run = ? AND step = ? ORDER BY seq DESC LIMIT 1"
        case stepExists = "SELECT EXISTS (SELECT 1 FROM records INDEXED BY records_by_step WHERE run = ? AND step = ?)"
        case stepHasIntent = "SELECT EXISTS (SELECT 1 FROM records INDEXED BY records_by_step WHERE run = ? AND step = ? AND kind = 'intent')"
        case intentAfter = "SELECT EXISTS (SELECT 1 FROM records INDEXED BY records_by_step WHERE run = ? AND step = ? AND seq > ? AND kind = 'intent')"
        case insertKey = "INSERT INTO intent_keys (run, seq, key, step) VALUES (?, ?, ?, ?)"
        case repeats = "SELECT COUNT(DISTINCT step) FROM intent_keys INDEXED BY intent_keys_by_key WHERE run = ? AND key = ? AND seq > ?"

        /// Where its prepared statement is kept: its place among the cases.
        var slot: Int { Self.ordered.firstIndex(of: self) ?? 0 }
        private static let ordered = allCases
    }

    /// A value to bind.
    enum Value {
        case text(String), int(Int), double(Double), null
    }

    /// Finalizes every prepared statement (they are prepared again when used).
    func finalizeAll() {
        for case let s? in prepared { sqlite3_finalize(s) }
        prepared = Array(repeating: nil, count: prepared.count)
    }

    /// Runs `sql` (no results), e.g. BEGIN, SAVEPOINT, COMMIT.
    func execute(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw failure(sql) }
    }

    /// Runs a statement that returns no rows.
    func run(_ statement: Statement, _ values: [Value]) throws {
        try query(statement, values) { _ in }
    }

    /// Runs a statement and hands each row to `row` (columns read through `Row`).
    func query(_ statement: Statement, _ values: [Value], _ row: (Row) throws -> Void) throws {
        let s = try handle(statement)
        defer {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
        }
        for (i, v) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch v {
            case let .text(t): rc = sqlite3_bind_text(s, index, t, -1, Self.transient)
            case let .int(n): rc = sqlite3_bind_int64(s, index, Int64(n))
            case let .double(d): rc = sqlite3_bind_double(s, index, d)
            case .null: rc = sqlite3_bind_null(s, index)
            }
            guard rc == SQLITE_OK else { throw failure(statement.rawValue) }
        }
        while true {
            switch sqlite3_step(s) {
            case SQLITE_ROW: try row(Row(statement: s))
            case SQLITE_DONE: return
            default: throw failure(statement.rawValue)
            }
        }
    }

    /// The first row's value, or nil without rows.
    func first<T>(_ statement: Statement, _ values: [Value], _ read: (Row) throws -> T) throws -> T? {
        var out: T?
        try query(statement, values) { r in if out == nil { out = try read(r) } }
        return out
    }

    /// The current row of a stepped statement.
    struct Row {
        let statement: OpaquePointer
        func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(statement, column)) }
        func double(_ column: Int32) -> Double { sqlite3_column_double(statement, column) }
        func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }
        func text(_ column: Int32) -> String? {
            guard let p = sqlite3_column_text(statement, column) else { return nil }
            let n = Int(sqlite3_column_bytes(statement, column))
            return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
        }

        /// A record from the columns run, seq, kind, step, at, body, prev_hash, hash.
        func record() throws -> JournalRecord {
            let kindText = text(2) ?? ""
            guard let kind = JournalRecord.Kind(rawValue: kindText) else {
                throw JournalError(.broken, "record of unknown kind \"\(kindText)\"")
            }
            return JournalRecord(run: text(0) ?? "", seq: int(1), kind: kind, step: isNull(3) ? nil : text(3), at: double(4),
                                 body: text(5) ?? "", prevHash: text(6) ?? "", hash: text(7) ?? "")
        }
    }

    private func handle(_ statement: Statement) throws -> OpaquePointer {
        if let s = prepared[statement.slot] { return s }
        var s: OpaquePointer?
        guard sqlite3_prepare_v3(db, statement.rawValue, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &s, nil) == SQLITE_OK, let s else {
            throw failure(statement.rawValue)
        }
        prepared[statement.slot] = s
        return s
    }

    private func failure(_ sql: String) -> JournalError {
        let code = sqlite3_extended_errcode(db)
        let message = String(cString: sqlite3_errmsg(db))
        return JournalError(.unavailable, "SQLite error \(code): \(message) (in: \(sql.prefix(60)))")
    }

    /// SQLITE_TRANSIENT (a macro Swift cannot import): SQLite copies the bound text.
    private static let transient = unsafeBitCast(Int(-1), to: sqlite3_destructor_type.self)
}
