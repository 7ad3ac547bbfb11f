import Foundation

/// Leader-based group commit for the writers of one process (see `SQLiteJournal`).
///
/// A thread that finds a commit under way queues its work; the next leader takes the journal's
/// cross-process write lock (`flock` of the lock file), runs all queued work in one `BEGIN
/// IMMEDIATE` transaction — each piece in its own savepoint, so one failure does not undo the
/// others — commits, seals the files (`JournalSeal`) and only then hands every caller its
/// result: nothing is reported before it is on disk.
final class GroupCommit: @unchecked Sendable {
    /// The connection and the seal epoch a piece of work runs in, and what the pieces of one
    /// transaction share.
    struct Context {
        let statements: SQLiteStatements
        let epoch: String
        let batch: Batch
    }

    /// Open per-run state shared by the pieces of one transaction (so seven steps of one run in
    /// one commit check and write the run's row once); `finish` runs after the last piece,
    /// inside the transaction.
    final class Batch {
        var runs: [String: SQLiteRunTransaction] = [:]
        func finish() throws { for tx in runs.values { try tx.finish() } }
    }

    /// A queued piece. Its value goes straight into the caller's typed box (no `Any`, so no
    /// dynamic cast — each is a runtime conformance lookup in a fresh process); `outcome` says
    /// whether it committed.
    private final class Work {
        let run: (Context) throws -> Void
        var outcome: Result<Void, Error>?
        init(_ run: @escaping (Context) throws -> Void) { self.run = run }
    }

    private final class Box<T> {
        var value: T?
    }

    private let condition = NSCondition()
    private var queue: [Work] = []
    private var leading = false
    /// The cross-process write lock; held only by this process's leader.
    private let lockFD: Int32
    private let seal: JournalSeal
    /// Threads of this process taking the write lock: `flock` does not exclude them from each
    /// other (they share the lock file's open file description).
    private let exclusion = NSLock()

    private var transactions = 0, pieces = 0, lastBatch = 0

    init(lockFD: Int32, databasePath: String) {
        self.lockFD = lockFD
        seal = JournalSeal(lockFD: lockFD, databasePath: databasePath)
    }
    deinit { close(lockFD) }

    var statistics: (transactions: Int, work: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (transactions, pieces)
    }

    /// Runs `body` holding the cross-process write lock and, when it succeeds, seals the files
    /// with the epoch it ran in (the body gets it). Also for work outside transactions
    /// (migrations, checkpoints).
    func exclusive<T>(_ body: (_ epoch: String) throws -> T) rethrows -> T {
        exclusion.lock()
        defer { exclusion.unlock() }
        while flock(lockFD, LOCK_EX) != 0 && errno == EINTR {}
        defer { flock(lockFD, LOCK_UN) }
        let epoch = seal.currentEpoch()
        let value = try body(epoch)
        seal.seal(epoch: epoch)
        return value
    }

    func submit<T>(statements: SQLiteStatements, _ body: @escaping (Context) throws -> T) throws -> T {
        let box = Box<T>()
        let work = Work { box.value = try body($0) }
        condition.lock()
        queue.append(work)
        while work.outcome == nil {
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
            let outcome = Result { try exclusive { try Self.commit(batch, statements: statements, epoch: $0) } }
            condition.lock()
            transactions += 1
            pieces += batch.count
            switch outcome {
            case let .success(failures):
                for (w, failure) in zip(batch, failures) { w.outcome = failure.map { .failure($0) } ?? .success(()) }
            case let .failure(error): for w in batch { w.outcome = .failure(error) }
            }
            leading = false
            condition.broadcast()
        }
        condition.unlock()
        guard let outcome = work.outcome else { throw JournalError(.unavailable, "lost a group-commit result") }
        try outcome.get()
        guard let value = box.value else { throw JournalError(.unavailable, "a committed piece left no value") }
        return value
    }

    /// One IMMEDIATE transaction, a savepoint per piece; each piece's error, nil for one that
    /// committed. Results are published only after COMMIT returned. Transaction control goes
    /// straight to SQLite (`SQLiteStatements`), like the pieces' statements. (`[Error?]`, not
    /// `[Result<Void, Error>]`: that array's storage made the Swift runtime scan the static
    /// binary's protocol conformances in every `lanes run`; docs/benchmarks.md, stop 11.)
    private static func commit(_ batch: [Work], statements: SQLiteStatements, epoch: String) throws -> [Error?] {
        let context = Context(statements: statements, epoch: epoch, batch: Batch())
        try statements.execute("BEGIN IMMEDIATE")
        do {
            var results: [Error?] = []
            results.reserveCapacity(batch.count)
            for w in batch {
                try statements.execute("SAVEPOINT lanes_piece")
                var failure: Error?
                do { try w.run(context) } catch { failure = error }
                if failure == nil {
                    try statements.execute("RELEASE lanes_piece")
                } else {
                    try statements.execute("ROLLBACK TO lanes_piece")
                    try statements.execute("RELEASE lanes_piece")
                }
                results.append(failure)
            }
            try context.batch.finish()
            try statements.execute("COMMIT")
            return results
        } catch {
            try? statements.execute("ROLLBACK")
            throw error
        }
    }
}
