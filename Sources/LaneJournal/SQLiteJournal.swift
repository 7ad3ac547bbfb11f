import CSQLiteConfig
import Foundation
import GRDB

/// The journal in one SQLite file (`journal.sqlite` in the state directory), through GRDB.
///
/// - WAL with `synchronous = FULL`: a commit is on disk when it returns.
/// - Every write is a `BEGIN IMMEDIATE` transaction, so writers in other processes queue on
///   SQLite's lock (waited out by a long busy timeout) instead of failing when they upgrade.
/// - Writers of different processes first queue on an exclusive `flock` of `PATH.lock`: the
///   kernel wakes the next one as soon as the lock is free, where SQLite's busy handler would
///   sleep in growing steps (up to 100 ms) and waste the lock's idle time under contention.
/// - Writers in this process share commits (group commit): a thread that finds a commit under
///   way queues its work; the next leader runs all queued work in one transaction, each piece in
///   its own savepoint, and every caller returns only after that transaction committed.
/// - The `runs` table is the per-run head (last seq and hash, next ordinal); it is updated in
///   the same transaction as each append. `records` is append-only (triggers refuse UPDATE and
///   DELETE).
public final class SQLiteJournal: JournalStore, @unchecked Sendable {
    public let path: String
    let pool: DatabasePool
    private let group: GroupCommit

    /// Opens (creating and migrating when needed) the journal at `path`.
    public init(path: String) throws(JournalError) {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(120)
        config.label = "lanes.journal"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            _ = lane_sqlite_no_checkpoint_on_close(db.sqliteConnection)
        }
        let lockFD = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw JournalError(.unavailable, "cannot open \(path).lock: \(String(cString: strerror(errno)))") }
        group = GroupCommit(lockFD: lockFD)
        do {
            pool = try DatabasePool(path: path, configuration: config)
            try Self.migrate(pool, lockFD: lockFD)
        } catch let error as JournalError {
            throw error
        } catch {
            throw JournalError(.unavailable, "cannot open \(path): \(Self.describe(error))")
        }
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
        return m
    }

    /// Migrates under an exclusive file lock, so processes opening a fresh journal at the same
    /// moment do not race on the schema.
    private static func migrate(_ pool: DatabasePool, lockFD: Int32) throws {
        let m = migrator
        if try pool.read({ try m.hasCompletedMigrations($0) }) { return }
        while flock(lockFD, LOCK_EX) != 0 && errno == EINTR {}
        defer { flock(lockFD, LOCK_UN) }
        try m.migrate(pool)
    }

    // MARK: JournalStore

    public func begin(_ request: BeginRequest) throws(JournalError) -> BeginDecision {
        try write { db in try Self.begin(db, request) }
    }

    @discardableResult
    public func close(run: String, step: String, intentSeq: Int, result: StepClose) throws(JournalError) -> JournalRecord {
        try write { db in
            guard let last = try Self.lastRecord(db, run: run, step: step), last.seq == intentSeq, last.kind == .intent else {
                throw JournalError(.conflict, "step \(step) of run \(run) is not waiting for a close of intent \(intentSeq)")
            }
            return try Self.append(db, run: run, kind: .close, step: step, body: Canonical.closeBody(result, intentSeq: intentSeq))
        }
    }

    public func runs() throws(JournalError) -> [RunSummary] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT id, lane, created_at, head_seq FROM runs ORDER BY created_at DESC, id DESC").map {
                RunSummary(id: $0["id"], lane: $0["lane"], createdAt: $0["created_at"], records: $0["head_seq"])
            }
        }
    }

    public func records(run: String) throws(JournalError) -> [JournalRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM records WHERE run = ? ORDER BY seq", arguments: [run]).map(Self.record)
        }
    }

    public func head(run: String) throws(JournalError) -> (seq: Int, hash: String)? {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT head_seq, head_hash FROM runs WHERE id = ?", arguments: [run]) else { return nil }
            return (row["head_seq"], row["head_hash"])
        }
    }

    public func chain(run: String) throws(JournalError) -> (records: [JournalRecord], head: (seq: Int, hash: String)?) {
        try read { db in
            let records = try Row.fetchAll(db, sql: "SELECT * FROM records WHERE run = ? ORDER BY seq", arguments: [run]).map(Self.record)
            let head = try Row.fetchOne(db, sql: "SELECT head_seq, head_hash FROM runs WHERE id = ?", arguments: [run])
            return (records, head.map { ($0["head_seq"], $0["head_hash"]) })
        }
    }

    /// Transactions committed and pieces of work they carried, by this instance (group commit
    /// shows as more work than transactions).
    public var commitStatistics: (transactions: Int, work: Int) { group.statistics }

    /// Forces a checkpoint of the WAL into the main file (for tests and `lanes verify`).
    public func checkpoint() throws(JournalError) {
        do { _ = try pool.writeWithoutTransaction { try $0.checkpoint(.truncate) } } catch {
            throw JournalError(.unavailable, Self.describe(error))
        }
    }

    // MARK: inside a transaction

    static func begin(_ db: Database, _ request: BeginRequest) throws -> BeginDecision {
        let run = request.run
        let head = try Row.fetchOne(db, sql: "SELECT next_ordinal FROM runs WHERE id = ?", arguments: [run])
        if head == nil {
            let opened = RunOpened(lane: request.intent.lane, supervisor: request.intent.supervisor)
            try db.execute(sql: "INSERT INTO runs (id, lane, created_at, head_seq, head_hash, next_ordinal) VALUES (?, ?, ?, 0, ?, 1)",
                           arguments: [run, request.intent.lane, Date().timeIntervalSince1970, JournalRecord.genesis])
            try append(db, run: run, kind: .run, step: nil, body: Canonical.encode(opened))
        } else {
            try checkTail(db, run: run)
        }
        var step = request.step
        if step == nil {
            var ordinal: Int = try Int.fetchOne(db, sql: "SELECT next_ordinal FROM runs WHERE id = ?", arguments: [run]) ?? 1
            while try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM records WHERE run = ? AND step = ?)", arguments: [run, String(ordinal)]) == true {
                ordinal += 1
            }
            try db.execute(sql: "UPDATE runs SET next_ordinal = ? WHERE id = ?", arguments: [ordinal + 1, run])
            step = String(ordinal)
        }
        let id = step ?? ""
        let intentBody = try Canonical.encode(request.intent)
        guard let last = try lastRecord(db, run: run, step: id) else {
            let r = try append(db, run: run, kind: .intent, step: id, body: intentBody)
            return .started(step: id, intentSeq: r.seq, retried: false)
        }
        if last.kind == .close {
            // Compare with the intent this close closes.
            let intent = try intentRecord(db, run: run, seq: last.closesSeq ?? 0).decode(StepIntent.self)
            let diff = request.intent.differences(from: intent)
            if !diff.isEmpty { return .nondeterministic(step: id, differences: diff) }
            return .replay(step: id, close: try last.decode(StepClose.self))
        }
        let previous = try last.decode(StepIntent.self)
        let diff = request.intent.differences(from: previous)
        if request.isAlive(previous.supervisor) { return .inFlight(step: id, supervisor: previous.supervisor) }
        if !diff.isEmpty { return .nondeterministic(step: id, differences: diff) }
        guard request.retryAllowed else { return .inDoubt(step: id, intent: previous) }
        let r = try append(db, run: run, kind: .intent, step: id, body: intentBody)
        return .started(step: id, intentSeq: r.seq, retried: true)
    }

    /// The run's last record must recompute to the head; otherwise nothing is appended.
    static func checkTail(_ db: Database, run: String) throws {
        guard let head = try Row.fetchOne(db, sql: "SELECT head_seq, head_hash FROM runs WHERE id = ?", arguments: [run]) else { return }
        let seq: Int = head["head_seq"], hash: String = head["head_hash"]
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM records WHERE run = ? ORDER BY seq DESC LIMIT 1", arguments: [run]) else {
            throw JournalError(.broken, "run \(run): the head says \(seq) records but none are stored; refusing to append")
        }
        let last = try record(row)
        if last.seq != seq || last.hash != hash || last.computedHash != last.hash {
            throw JournalError(.broken, "run \(run): record \(last.seq) does not match the run's head (seq \(seq)); the chain is broken, refusing to append (see `lanes verify \(run)`)")
        }
    }

    @discardableResult
    static func append(_ db: Database, run: String, kind: JournalRecord.Kind, step: String?, body: String) throws -> JournalRecord {
        guard let head = try Row.fetchOne(db, sql: "SELECT head_seq, head_hash FROM runs WHERE id = ?", arguments: [run]) else {
            throw JournalError(.notFound, "no run \(run)")
        }
        let seq: Int = head["head_seq"], prev: String = head["head_hash"]
        let r = JournalRecord.make(run: run, seq: seq + 1, kind: kind, step: step, at: Date().timeIntervalSince1970, body: body, prevHash: prev)
        try db.execute(sql: "INSERT INTO records (run, seq, kind, step, at, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       arguments: [r.run, r.seq, r.kind.rawValue, r.step, r.at, r.body, r.prevHash, r.hash])
        try db.execute(sql: "UPDATE runs SET head_seq = ?, head_hash = ? WHERE id = ?", arguments: [r.seq, r.hash, run])
        return r
    }

    static func lastRecord(_ db: Database, run: String, step: String) throws -> JournalRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM records WHERE run = ? AND step = ? ORDER BY seq DESC LIMIT 1", arguments: [run, step]).map(record)
    }

    static func intentRecord(_ db: Database, run: String, seq: Int) throws -> JournalRecord {
        guard let r = try Row.fetchOne(db, sql: "SELECT * FROM records WHERE run = ? AND seq = ?", arguments: [run, seq]).map(record), r.kind == .intent else {
            throw JournalError(.broken, "run \(run): the intent record \(seq) a close refers to is missing")
        }
        return r
    }

    static func record(_ row: Row) throws -> JournalRecord {
        let kindText: String = row["kind"]
        guard let kind = JournalRecord.Kind(rawValue: kindText) else {
            throw JournalError(.broken, "record of unknown kind \"\(kindText)\"")
        }
        return JournalRecord(run: row["run"], seq: row["seq"], kind: kind, step: row["step"], at: row["at"],
                             body: row["body"], prevHash: row["prev_hash"], hash: row["hash"])
    }

    // MARK: plumbing

    private func write<T>(_ work: @escaping (Database) throws -> T) throws(JournalError) -> T {
        do {
            return try group.submit(pool: pool, work)
        } catch let error as JournalError {
            throw error
        } catch {
            throw JournalError(.unavailable, "cannot write \(path): \(Self.describe(error))")
        }
    }

    private func read<T>(_ work: (Database) throws -> T) throws(JournalError) -> T {
        do {
            return try pool.read(work)
        } catch let error as JournalError {
            throw error
        } catch {
            throw JournalError(.unavailable, "cannot read \(path): \(Self.describe(error))")
        }
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? DatabaseError { return "\(e.resultCode): \(e.message ?? "")" }
        return String(describing: error)
    }
}

/// Leader-based group commit for the writers of one process (see `SQLiteJournal`).
final class GroupCommit: @unchecked Sendable {
    private final class Work {
        let run: (Database) throws -> Any
        var result: Result<Any, Error>?
        init(_ run: @escaping (Database) throws -> Any) { self.run = run }
    }

    private let condition = NSCondition()
    private var queue: [Work] = []
    private var leading = false
    /// The cross-process write lock (see `SQLiteJournal`); held only by this process's leader.
    private let lockFD: Int32

    private var transactions = 0, pieces = 0, lastBatch = 0

    init(lockFD: Int32) { self.lockFD = lockFD }

    var statistics: (transactions: Int, work: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (transactions, pieces)
    }
    deinit { close(lockFD) }

    func submit<T>(pool: DatabasePool, _ body: @escaping (Database) throws -> T) throws -> T {
        let work = Work { try body($0) as Any }
        condition.lock()
        queue.append(work)
        while work.result == nil {
            if leading {
                condition.wait()
                continue
            }
            leading = true
            // When writers have been sharing commits, give the ones that were just woken a
            // moment to queue their next piece of work, so it rides this commit, not the next.
            if lastBatch > 1 && queue.count < lastBatch {
                condition.unlock()
                usleep(150)
                condition.lock()
            }
            let batch = queue
            queue.removeAll()
            lastBatch = batch.count
            condition.unlock()
            while flock(lockFD, LOCK_EX) != 0 && errno == EINTR {}
            let outcome = Result { try Self.commit(batch, pool: pool) }
            flock(lockFD, LOCK_UN)
            condition.lock()
            transactions += 1
            pieces += batch.count
            switch outcome {
            case let .success(results): for (w, r) in zip(batch, results) { w.result = r }
            case let .failure(error): for w in batch { w.result = .failure(error) }
            }
            leading = false
            condition.broadcast()
        }
        condition.unlock()
        guard let result = work.result else { throw JournalError(.unavailable, "lost a group-commit result") }
        guard let value = try result.get() as? T else { throw JournalError(.unavailable, "group commit type mismatch") }
        return value
    }

    /// One IMMEDIATE transaction; each piece of work in a savepoint so one failure does not undo
    /// the others. Results are published only after COMMIT returned.
    private static func commit(_ batch: [Work], pool: DatabasePool) throws -> [Result<Any, Error>] {
        var results: [Result<Any, Error>] = []
        try pool.writeWithoutTransaction { db in
            results = []
            try db.inTransaction(.immediate) {
                for w in batch {
                    var r: Result<Any, Error> = .failure(JournalError(.unavailable, "not run"))
                    try db.inSavepoint {
                        r = Result { try w.run(db) }
                        if case .success = r { return .commit }
                        return .rollback
                    }
                    results.append(r)
                }
                return .commit
            }
        }
        return results
    }
}

extension SQLiteJournal {
    /// SQLite's own check of the file (`PRAGMA quick_check`); empty when the file is sound.
    public func integrityProblems() throws(JournalError) -> [String] {
        do {
            let rows = try pool.read { try String.fetchAll($0, sql: "PRAGMA quick_check") }
            return rows == ["ok"] ? [] : rows
        } catch {
            return ["\(Self.describe(error))"]
        }
    }
}
