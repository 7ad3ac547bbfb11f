import CSQLiteConfig
import Foundation
import LaneModel
import GRDB

/// The journal in one SQLite file (`journal.sqlite` in the state directory).
///
/// - WAL with `synchronous = FULL`: a commit is on disk when it returns.
/// - Writes go through one connection driven through SQLite's C API (`SQLiteStatements`), so a
///   `lanes run` — a new process each time — pays little to open it; the schema version comes
///   from `user_version`. GRDB creates and migrates the schema (`DatabaseMigrator`) and serves
///   every read, on a second connection opened only when something needs it.
/// - Every write goes through `GroupCommit`: writers of different processes queue on an
///   exclusive `flock` of `PATH.lock` (the kernel wakes the next one as soon as the lock is
///   free, where SQLite's busy handler would sleep in growing steps), writers of this process
///   share commits, and each commit seals the files (`JournalSeal`) so the next writer knows
///   whether anything else touched them.
/// - `runs` holds each run's head (last seq and hash), next ordinal, verified epoch and folded
///   `RunState`, updated in the same transaction as each append; `records` is append-only
///   (triggers refuse UPDATE and DELETE); `intent_keys` indexes intents by what they run (loop
///   detection). `runs.state` and `intent_keys` are derived and rebuilt from the records.
public final class SQLiteJournal: JournalStore, GovernedJournal, @unchecked Sendable {
    public let path: String
    private let group: GroupCommit
    /// The write path.
    private let statements: SQLiteStatements
    private let grdbLock = NSLock()
    private var grdb: DatabaseQueue?

    /// WAL pages after which a commit checkpoints (SQLite's default is 1,000). A new process's
    /// first connection rebuilds the WAL index by reading every valid frame of the WAL; after a
    /// checkpoint the next writer restarts the WAL from the top, so this keeps that short.
    /// Measured with the journal bench: open 1.37 ms at 1,000 pages, 0.69 at 256, 0.44 at 64;
    /// 16 was no faster to open and slower to write.
    static let walCheckpointPages = 64

    /// The schema this build writes (`PRAGMA user_version`).
    static let schemaVersion = 2

    /// The process that writes through this instance: decisions appended without a supervisor
    /// are stamped with it (the state directory's opener passes `Supervisor.current`).
    public let writer: Supervisor?

    /// Opens (creating and migrating when needed) the journal at `path`.
    public init(path: String, writer: Supervisor? = nil) throws(JournalError) {
        self.path = path
        self.writer = writer
        let lockFD = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw JournalError(.unavailable, "cannot open \(path).lock: \(String(cString: strerror(errno)))") }
        group = GroupCommit(lockFD: lockFD, databasePath: path)
        do {
            statements = try SQLiteStatements(path: path, walCheckpointPages: Self.walCheckpointPages)
            let version = try statements.userVersion()
            if version > Self.schemaVersion {
                throw JournalError(.unavailable, "\(path) has schema version \(version); this lanes knows up to \(Self.schemaVersion) (use a newer lanes)")
            }
            if version < Self.schemaVersion { try migrate() }
        } catch let error as JournalError {
            throw error
        } catch {
            throw JournalError(.unavailable, "cannot open \(path): \(Self.describe(error))")
        }
    }

    /// The GRDB connection for reads, migrations and tests (opened on first use).
    func databaseQueue() throws -> DatabaseQueue {
        grdbLock.lock()
        defer { grdbLock.unlock() }
        if let grdb { return grdb }
        var config = Configuration()
        config.busyMode = .timeout(120)
        config.label = "lanes.journal"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = \(Self.walCheckpointPages)")
            _ = lane_sqlite_no_checkpoint_on_close(db.sqliteConnection)
        }
        let queue = try DatabaseQueue(path: path, configuration: config)
        grdb = queue
        return queue
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE runs (
                    id TEXT PRIMARY KEY NOT NULL,
                    lane TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    head_seq INTEGER NOT NULL,
                    head_hash TEXT NOT NULL,
                    next_ordinal INTEGER NOT NULL
                );
                CREATE TABLE records (
                    run TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    step TEXT,
                    at REAL NOT NULL,
                    body TEXT NOT NULL,
                    prev_hash TEXT NOT NULL,
                    hash TEXT NOT NULL,
                    PRIMARY KEY (run, seq)
                ) WITHOUT ROWID;
                CREATE INDEX records_by_step ON records (run, step, seq);
                CREATE TRIGGER records_append_only_update BEFORE UPDATE ON records
                    BEGIN SELECT RAISE(ABORT, 'journal records are append-only'); END;
                CREATE TRIGGER records_append_only_delete BEFORE DELETE ON records
                    BEGIN SELECT RAISE(ABORT, 'journal records are append-only'); END;
                """)
        }
        m.registerMigration("v2: kept run state, verified epochs, intent keys") { db in
            try db.execute(sql: """
                ALTER TABLE runs ADD COLUMN verified_epoch TEXT NOT NULL DEFAULT '';
                ALTER TABLE runs ADD COLUMN state_seq INTEGER;
                ALTER TABLE runs ADD COLUMN state TEXT;
                CREATE TABLE intent_keys (
                    run TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    key TEXT NOT NULL,
                    step TEXT NOT NULL,
                    PRIMARY KEY (run, seq)
                ) WITHOUT ROWID;
                CREATE INDEX intent_keys_by_key ON intent_keys (run, key, seq);
                """)
        }
        return m
    }

    /// Brings the schema up to date under the write lock, so processes opening a fresh journal
    /// at the same moment do not race on it.
    private func migrate() throws {
        let database = try databaseQueue()
        try group.exclusive { _ in
            let version = try database.inDatabase { try Int.fetchOne($0, sql: "PRAGMA user_version") ?? 0 }
            guard version < Self.schemaVersion else { return }
            try database.inDatabase { _ = try String.fetchOne($0, sql: "PRAGMA journal_mode = WAL") }
            try Self.migrator.migrate(database)
            try database.inDatabase { try $0.execute(sql: "PRAGMA user_version = \(Self.schemaVersion)") }
        }
    }

    /// The directory the journal file is in: the state directory, where supervisors' liveness
    /// locks live (`SupervisorLock`).
    public var directory: String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }


    // MARK: JournalStore

    // Bodies are encoded before `transact`, in the caller's thread: under group commit only the
    // leader's thread works inside the transaction, the others wait.

    public func begin(_ request: BeginRequest) throws(JournalError) -> BeginDecision {
        let prepared: BeginRequest
        do { prepared = try request.encodingIntent() } catch { throw JournalError(.unavailable, "cannot encode the intent: \(error)") }
        return try transact(run: request.run) { tx in try tx.begin(prepared) }
    }

    @discardableResult
    public func close(run: String, step: String, intentSeq: Int, result: StepResult) throws(JournalError) -> JournalRecord {
        let body = CanonicalBody.close(result, intentSeq: intentSeq)
        return try write(run: run) { tx in try tx.close(step: step, intentSeq: intentSeq, result: result, body: body) }
    }

    public func runs() throws(JournalError) -> [RunSummary] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT id, lane, created_at, head_seq FROM runs ORDER BY created_at DESC, id DESC").map {
                RunSummary(id: $0[0], lane: $0[1], createdAt: $0[2], records: $0[3])
            }
        }
    }

    public func records(run: String) throws(JournalError) -> [JournalRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "\(Self.selectRecords) WHERE run = ? ORDER BY seq", arguments: [run]).map(Self.record)
        }
    }

    /// The ids of the run's steps that have an intent, in the order of their first intent. Reads
    /// no record bodies, so a run of any length costs one short string per step.
    public func stepIDs(run: String) throws(JournalError) -> [String] {
        try read { db in
            try String.fetchAll(db, sql: "SELECT step FROM records WHERE run = ? AND kind = 'intent' AND step IS NOT NULL GROUP BY step ORDER BY MIN(seq)",
                                arguments: [run])
        }
    }

    /// The records of the run that belong to these steps, in order.
    public func records(run: String, steps: [String]) throws(JournalError) -> [JournalRecord] {
        if steps.isEmpty { return [] }
        let marks = Array(repeating: "?", count: steps.count).joined(separator: ",")
        return try read { db in
            try Row.fetchAll(db, sql: "\(Self.selectRecords) WHERE run = ? AND step IN (\(marks)) ORDER BY seq",
                             arguments: StatementArguments([run] + steps)).map(Self.record)
        }
    }

    /// At most `limit` of the run's records after `afterSeq`, in order: a long run's records a
    /// page at a time (each close record holds the step's captured output, up to megabytes).
    public func records(run: String, afterSeq: Int, limit: Int) throws(JournalError) -> [JournalRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "\(Self.selectRecords) WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?",
                             arguments: [run, afterSeq, limit]).map(Self.record)
        }
    }

    /// The run's decision records (approvals, denials, halts, stops), in order: few, and without
    /// a step column (a decision names its step in its body).
    public func decisions(run: String) throws(JournalError) -> [JournalRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "\(Self.selectRecords) WHERE run = ? AND kind = 'decision' ORDER BY seq", arguments: [run]).map(Self.record)
        }
    }

    public func head(run: String) throws(JournalError) -> (seq: Int, hash: String)? {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT head_seq, head_hash FROM runs WHERE id = ?", arguments: [run]) else { return nil }
            return (row[0], row[1])
        }
    }

    public func chain(run: String) throws(JournalError) -> (records: [JournalRecord], head: (seq: Int, hash: String)?) {
        try read { db in
            let records = try Row.fetchAll(db, sql: "\(Self.selectRecords) WHERE run = ? ORDER BY seq", arguments: [run]).map(Self.record)
            let head = try Row.fetchOne(db, sql: "SELECT head_seq, head_hash FROM runs WHERE id = ?", arguments: [run])
            return (records, head.map { ($0[0], $0[1]) })
        }
    }

    /// The run's kept state as stored (nil: no run, or none kept yet), for `lanes verify` to
    /// compare with a fold of the records.
    public func keptState(run: String) throws(JournalError) -> RunState? {
        try read { db in
            guard let body = try String.fetchOne(db, sql: "SELECT state FROM runs WHERE id = ? AND state_seq = head_seq", arguments: [run]) else { return nil }
            return RunState(storageText: body)
        }
    }

    /// Compares the run state kept beside the head with a fold of `records` (the run's verified
    /// chain). That state is what budgets, approvals and loop detection act on.
    public func checkKeptState(run: String, records: [JournalRecord]) throws(JournalError) -> ChainProblem? {
        guard let kept = try keptState(run: run), kept != RunState(records) else { return nil }
        return ChainProblem(run: run, seq: records.count,
                            message: "the run state kept beside the head does not match a fold of the records (the chain itself verifies)")
    }

    // MARK: GovernedJournal

    public func transact<T>(run: String, _ body: @escaping (RunTransaction) throws -> T) throws(JournalError) -> T {
        try write(run: run) { try body($0) }
    }

    private func write<T>(run: String, _ body: @escaping (SQLiteRunTransaction) throws -> T) throws(JournalError) -> T {
        do {
            return try group.submit(statements: statements) { context in
                // One open run per transaction: pieces of the same commit share it, and its row
                // is written once after the last piece (`GroupCommit.Batch.finish`). A piece that
                // fails is rolled back by its savepoint, so its changes to the run are undone too.
                let created = context.batch.runs[run] == nil
                let tx = try context.batch.runs[run] ?? SQLiteRunTransaction(statements: context.statements, run: run, epoch: context.epoch, writer: self.writer)
                context.batch.runs[run] = tx
                let saved = tx.snapshot()
                do {
                    return try body(tx)
                } catch {
                    if created { context.batch.runs[run] = nil } else { tx.restore(saved) }
                    throw error
                }
            }
        } catch let error as JournalError {
            throw error
        } catch let error as TransactionRefusal {
            throw JournalError(.conflict, error.message)
        } catch {
            throw JournalError(.unavailable, "cannot write \(path): \(Self.describe(error))")
        }
    }

    // MARK: maintenance

    /// Transactions committed and pieces of work they carried, by this instance (group commit
    /// shows as more work than transactions).
    public var commitStatistics: (transactions: Int, work: Int) { group.statistics }

    /// Forces a checkpoint of the WAL into the main file (for tests and `lanes verify`).
    public func checkpoint() throws(JournalError) {
        do {
            try group.exclusive { _ in try statements.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
        } catch {
            throw JournalError(.unavailable, Self.describe(error))
        }
    }

    /// SQLite's own check of the file (`PRAGMA quick_check`); empty when the file is sound.
    public func integrityProblems() throws(JournalError) -> [String] {
        do {
            let rows = try databaseQueue().read { try String.fetchAll($0, sql: "PRAGMA quick_check") }
            return rows == ["ok"] ? [] : rows
        } catch {
            return ["\(Self.describe(error))"]
        }
    }

    private func read<T>(_ work: (Database) throws -> T) throws(JournalError) -> T {
        do {
            return try databaseQueue().read(work)
        } catch let error as JournalError {
            throw error
        } catch {
            throw JournalError(.unavailable, "cannot read \(path): \(Self.describe(error))")
        }
    }

    static let selectRecords = "SELECT run, seq, kind, step, at, body, prev_hash, hash FROM records"

    /// A record from a row of `selectRecords` (columns by position).
    static func record(_ row: Row) throws -> JournalRecord {
        let kindText: String = row[2]
        guard let kind = JournalRecord.Kind(rawValue: kindText) else {
            throw JournalError(.broken, "record of unknown kind \"\(kindText)\"")
        }
        return JournalRecord(run: row[0], seq: row[1], kind: kind, step: row[3], at: row[4], body: row[5], prevHash: row[6], hash: row[7])
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? DatabaseError { return "\(e.resultCode): \(e.message ?? "")" }
        return String(describing: error)
    }
}
