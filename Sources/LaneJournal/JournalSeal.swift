import Foundation

/// Tells whether the journal files were changed by anything but a `lanes` writer since the
/// last one committed, so a step does not have to re-verify its whole run every time.
///
/// After each commit the writer (still holding the journal's write lock) stores a *stamp* of
/// the database and WAL files — device, inode, size and mtime — in the lock file, with
/// an *epoch*: a random id. The next writer compares the stamp with the files. When they
/// match, no one else wrote in between and the epoch stays; when they differ (an editor, a
/// `sqlite3` shell, a restore, a writer killed mid-commit, a lost lock file), a new epoch
/// starts. Every run remembers the epoch its chain was last verified in
/// (`runs.verified_epoch`); a run appended to in a new epoch has its whole chain verified
/// (and its kept state rebuilt) first. So a record changed outside `lanes` is always found
/// before anything is appended to its run, at the cost of one full check per change.
///
/// ctime is not part of the stamp: running as root, SQLite fchowns the WAL every time it opens
/// it, which changes its ctime and nothing else. So what the seal cannot see is a change that
/// keeps size and mtime of both files (a deliberate `touch -d` back, or a write within the
/// same timestamp tick on a kernel without fine-grained timestamps) and silent media
/// corruption; a deliberate forger could rewrite the whole chain anyway. `lanes verify` always
/// checks everything.
struct JournalSeal {
    private let lockFD: Int32
    private let files: [String]
    private static let header = "lanes journal seal 1"

    /// `lockFD`: the journal's lock file, open read-write; `databasePath`: the SQLite file.
    init(lockFD: Int32, databasePath: String) {
        self.lockFD = lockFD
        files = [databasePath, databasePath + "-wal"]
    }

    /// The epoch the coming commit belongs to. Call holding the write lock, before the commit.
    func currentEpoch() -> String {
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = buffer.withUnsafeMutableBytes { pread(lockFD, $0.baseAddress, $0.count, 0) }
        if n > 0 {
            let lines = String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            if lines.count >= 3, lines[0] == Self.header, lines[1].count == 32, lines[2] == stamp() { return String(lines[1]) }
        }
        return Self.newEpoch()
    }

    /// Stores the stamp of the files as this commit left them. Call holding the write lock,
    /// after a successful commit. Not synced: a stamp lost in a crash only costs a full check.
    func seal(epoch: String) {
        let text = Array("\(Self.header)\n\(epoch)\n\(stamp())\n".utf8)
        let written = text.withUnsafeBytes { pwrite(lockFD, $0.baseAddress, $0.count, 0) }
        if written == text.count { _ = ftruncate(lockFD, off_t(text.count)) }
    }

    private func stamp() -> String {
        files.map { path -> String in
            var st = stat()
            guard stat(path, &st) == 0 else { return "absent" }
            return "\(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        }.joined(separator: " ")
    }

    private static func newEpoch() -> String {
        var g = SystemRandomNumberGenerator()
        return String(format: "%016llx%016llx", g.next() as UInt64, g.next() as UInt64)
    }
}
