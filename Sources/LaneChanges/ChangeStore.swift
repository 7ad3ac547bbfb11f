import Foundation
import Glibc
import LaneModel

/// Where change sets live in the state directory (never visible to a step: the state directory
/// is hidden from every sandbox):
///
///     STATE/changes/RUN/STEP/changeset.json   the change set (ChangeSet, JSON)
///     STATE/changes/RUN/STEP/upper/           the overlay's upper directory (what the step wrote)
///     STATE/changes/RUN/STEP/work/            the overlay's work directory
///     STATE/changes/RUN/STEP/undo/SHA256      pre-image contents, content-addressed
public struct ChangeStore: Sendable {
    public let root: String

    public init(stateDirectory: String) { root = stateDirectory + "/changes" }

    /// A run or step id usable as a directory name: 1–128 of [A-Za-z0-9._:-], not starting with a dot.
    public static func isSafeID(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 128, !s.hasPrefix(".") else { return false }
        return s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || ".-_:".unicodeScalars.contains($0) }
    }

    public func directory(run: String, step: String) throws(LanesError) -> String {
        guard Self.isSafeID(run), Self.isSafeID(step) else {
            throw LanesError(.invalidArgument, stage: "changes", "run \"\(run)\" / step \"\(step)\": ids with characters other than [A-Za-z0-9._:-] cannot hold a change set")
        }
        return root + "/" + run + "/" + step
    }

    public func upper(run: String, step: String) throws(LanesError) -> String { try directory(run: run, step: step) + "/upper" }
    public func work(run: String, step: String) throws(LanesError) -> String { try directory(run: run, step: step) + "/work" }
    public func undo(run: String, step: String) throws(LanesError) -> String { try directory(run: run, step: step) + "/undo" }

    /// Creates the step's directories (0700) for a new attempt. An earlier attempt's upper
    /// directory that still holds changes is evidence: refused until it is applied or discarded.
    public func prepare(_ set: ChangeSet) throws(LanesError) -> (upper: String, work: String) {
        let dir = try directory(run: set.run, step: set.step)
        let upper = dir + "/upper", work = dir + "/work"
        if let names = try? FileManager.default.contentsOfDirectory(atPath: upper), !names.isEmpty {
            throw LanesError(.setupFailed, stage: "changes",
                             "step \(set.step) of run \(set.run) has changes left by an earlier attempt; `lanes diff`, then `lanes apply` or `lanes discard` them first")
        }
        for d in [root, root + "/" + set.run, dir, upper, work] {
            if mkdir(d, 0o700) != 0 && errno != EEXIST { throw DirectoryFD.sysError("mkdir \(d)") }
        }
        // Not flushed: the journal's intent record (flushed) is what makes the step in doubt;
        // this file only says where its upper directory is, and is rewritten when the step ends.
        try save(set, durable: false)
        return (upper, work)
    }

    public func load(run: String, step: String) throws(LanesError) -> ChangeSet? {
        let path = try directory(run: run, step: step) + "/changeset.json"
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do { return try JSONDecoder().decode(ChangeSet.self, from: data) } catch {
            throw LanesError(.invalidConfig, stage: "changes", "\(path): not a valid change set (\(error))")
        }
    }

    /// Writes changeset.json atomically (temporary file, rename; fsync unless `durable` is false:
    /// a state that is saved again moments later does not pay for a disk flush).
    public func save(_ set: ChangeSet, durable: Bool = true) throws(LanesError) {
        let dir = try directory(run: set.run, step: set.step)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do { data = try encoder.encode(set) } catch { throw LanesError(.setupFailed, stage: "changes", "encode: \(error)") }
        let tmp = dir + "/.changeset.json.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DirectoryFD.sysError("create \(tmp)") }
        let n = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if durable { fsync(fd) }
        close(fd)
        guard n == data.count, rename(tmp, dir + "/changeset.json") == 0 else { throw DirectoryFD.sysError("write \(dir)/changeset.json") }
    }

    /// Every change set of a run, by step.
    public func list(run: String) -> [ChangeSet] {
        guard Self.isSafeID(run), let steps = try? FileManager.default.contentsOfDirectory(atPath: root + "/" + run) else { return [] }
        return steps.sorted().compactMap { try? load(run: run, step: $0) }
    }

    /// All change sets (for the later-step check of `lanes revert`).
    public func all() -> [ChangeSet] {
        guard let runs = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        return runs.sorted().flatMap { list(run: $0) }
    }

    /// Removes the upper and work directories of a step (after apply or discard); `deferred`:
    /// renames them into `changes/.trash` instead, for `lanes gc` to remove.
    public func removeOverlay(run: String, step: String, deferred: Bool = false) {
        guard let dir = try? directory(run: run, step: step) else { return }
        let trash = root + "/.trash"
        if deferred && (mkdir(trash, 0o700) == 0 || errno == EEXIST) {
            let slot = trash + "/\(run).\(step).\(UInt32.random(in: 0...UInt32.max))"
            if mkdir(slot, 0o700) == 0 && rename(dir + "/upper", slot + "/upper") == 0 && rename(dir + "/work", slot + "/work") == 0 { return }
        }
        for sub in ["upper", "work"] { removeTree(dir + "/" + sub) }
    }

    /// Removes the change-set state of runs whose newest change set is older than `seconds`.
    public func collect(olderThan seconds: Double, now: Double = Date().timeIntervalSince1970) -> [String] {
        removeTree(root + "/.trash")
        guard let runs = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        var removed: [String] = []
        for run in runs.sorted() where Self.isSafeID(run) {
            var st = stat(), newest = 0.0
            let steps = (try? FileManager.default.contentsOfDirectory(atPath: root + "/" + run)) ?? []
            for step in steps where lstat(root + "/" + run + "/" + step + "/changeset.json", &st) == 0 {
                newest = max(newest, Double(st.st_mtim.tv_sec))
            }
            if lstat(root + "/" + run, &st) == 0 { newest = max(newest, Double(st.st_mtim.tv_sec)) }
            if now - newest > seconds {
                removeTree(root + "/" + run)
                removed.append(run)
            }
        }
        return removed
    }

    /// rm -rf without following symlinks. The work directory of an overlay can hold a `work`
    /// subdirectory with mode 000 (the kernel's); it is made searchable first.
    func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            chmod(path, 0o700)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

/// Pre-image contents by SHA-256 (one directory per change set).
struct ObjectStore {
    let directory: String

    func store(fd: Int32, expected: String?) throws(LanesError) {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST { throw DirectoryFD.sysError("mkdir \(directory)") }
        let tmp = directory + "/.tmp.\(getpid())"
        let out = Glibc.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard out >= 0 else { throw DirectoryFD.sysError("create \(tmp)") }
        let hash: String
        do throws(LanesError) { hash = try DirectoryFD.hash(fd: fd, copyTo: out) } catch {
            close(out)
            unlink(tmp)
            throw error
        }
        // No fsync per object (it would cost a disk flush per file of every auto step): a
        // pre-image lost in a crash cannot be restored wrongly, since restoring checks its hash.
        close(out)
        if let expected, expected != hash {
            unlink(tmp)
            throw LanesError(.setupFailed, stage: "changes", "a workspace file changed while its pre-image was kept")
        }
        guard rename(tmp, directory + "/" + hash) == 0 else { throw DirectoryFD.sysError("keep pre-image") }
    }

    /// Links `name` (in `parent`) into the store as `hash` when it is still inode `ino`. False
    /// when it cannot (the caller copies). The link is checked after it is made, so a name
    /// swapped meanwhile is never kept under the wrong hash (restoring checks the hash anyway).
    func link(_ parent: DirectoryFD, _ name: String, hash: String, ino: UInt64) -> Bool {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST { return false }
        let path = directory + "/" + hash
        var st = stat()
        if lstat(path, &st) == 0 { return true }  // the same content is already kept
        guard linkat(parent.fd, name, AT_FDCWD, path, 0) == 0 else { return false }
        if lstat(path, &st) == 0, UInt64(st.st_ino) == ino, (st.st_mode & S_IFMT) == S_IFREG { return true }
        unlink(path)
        return false
    }

    func open(_ hash: String) throws(LanesError) -> Int32 {
        guard hash.count == 64, hash.allSatisfy(\.isHexDigit) else { throw LanesError(.invalidConfig, stage: "changes", "bad object name \(hash)") }
        let fd = Glibc.open(directory + "/" + hash, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw DirectoryFD.sysError("open pre-image \(hash.prefix(12))") }
        return fd
    }

    func remove() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] { unlink(directory + "/" + name) }
        rmdir(directory)
    }
}
