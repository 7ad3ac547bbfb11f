import Glibc
import LaneJournal
import LaneModel
import LaneSys
import LaneSyscall

/// The state directory: the journal and the secret store. Created 0700; never visible inside a
/// sandbox (the CLI hides it).
public struct StateDirectory: Sendable {
    public let path: String

    /// `--state DIR`, else `LANES_STATE`, else `$XDG_STATE_HOME/lanes`, else `/var/lib/lanes`
    /// for root, else `$HOME/.local/state/lanes`.
    public static func resolve(explicit: String?, environment: [String: String], uid: uid_t) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let s = environment["LANES_STATE"], !s.isEmpty { return s }
        if let x = environment["XDG_STATE_HOME"], x.hasPrefix("/") { return x + "/lanes" }
        if uid == 0 { return "/var/lib/lanes" }
        return (environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp") + "/.local/state/lanes"
    }

    /// Opens (creating with mode 0700) the directory. An existing directory that others can
    /// read or write is tightened to 0700.
    ///
    /// mkdir(2) and getcwd(3), not FileManager: its attribute dictionary (`[FileAttributeKey:
    /// Any]`) cost a protocol-conformance scan of the whole static binary in every `lanes run`
    /// (~70 µs; docs/benchmarks.md, stop 11).
    public init(path: String) throws(JournalError) {
        let absolute = path.hasPrefix("/") ? path : (currentWorkingDirectory() ?? ".") + "/" + path
        if let failed = makeDirectories(absolute, mode: 0o700) {
            let why = String(cString: strerror(failed.errno))
            throw JournalError(.unavailable, "cannot create the state directory \(absolute): "
                               + (failed.directory == absolute ? why : "\(failed.directory): \(why)"))
        }
        var st = stat()
        guard lstat(absolute, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw JournalError(.unavailable, "the state directory \(absolute) is not a directory")
        }
        if st.st_mode & 0o077 != 0 && chmod(absolute, 0o700) != 0 {
            throw JournalError(.unavailable, "cannot make the state directory \(absolute) private (mode 0700)")
        }
        self.path = absolute
    }

    public var journalPath: String { path + "/journal.sqlite" }
    public var secretsPath: String { path + "/secrets" }

    /// Opens the journal; a new journal file is created 0600 (SQLite gives its WAL and shared
    /// memory files the same mode).
    public func openJournal() throws(JournalError) -> SQLiteJournal {
        let fd = open(journalPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd >= 0 { close(fd) }
        return try SQLiteJournal(path: journalPath, writer: .current)
    }
}

extension SQLiteJournal {
    /// Whether the supervisor of an intent in this journal still runs (`Supervisor.isAlive(stateDirectory:)`).
    public func isAlive(_ supervisor: Supervisor) -> Bool { supervisor.isAlive(stateDirectory: directory) }
}

extension Supervisor {
    /// This process.
    public static var current: Supervisor {
        let pid = getpid()
        return Supervisor(pid: pid, startTime: startTime(of: pid) ?? 0, bootID: currentBootID, host: hostName)
    }

    /// gethostname(2): `ProcessInfo.hostName` may ask the resolver.
    static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// Whether that supervisor still runs, asked of the state directory it journals to: when it
    /// recorded a lock (`SupervisorLock`), whether that lock is still held — true across pid
    /// namespaces and immune to pid reuse; otherwise `isAlive`.
    public func isAlive(stateDirectory: String) -> Bool {
        guard bootID == Supervisor.currentBootID else { return false }
        guard let lock else { return isAlive }
        return SupervisorLock.isHeld(stateDirectory: stateDirectory, name: lock)
    }

    /// Whether that supervisor still runs, by pid: same boot, and a process with that pid
    /// started at that time. Wrong for a supervisor in another pid namespace (its pid means
    /// something else here); `isAlive(stateDirectory:)` is not.
    /// A zombie waiting for its parent is not running: it counts as dead. This is the one
    /// pid-based liveness check (`lanes stop` uses it too).
    public var isAlive: Bool {
        guard bootID == Supervisor.currentBootID else { return false }
        return ProcessStat.isRunning(pid: pid, startTime: startTime)
    }

    /// Field 22 of /proc/PID/stat.
    static func startTime(of pid: Int32) -> UInt64? { ProcessStat.read(pid)?.startTime }

    static let currentBootID: String = {
        guard let bytes = readProcFile("/proc/sys/kernel/random/boot_id") else { return "unknown" }
        let text = String(decoding: bytes.filter { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: " ") }, as: UTF8.self)
        return text.isEmpty ? "unknown" : text
    }()
}

/// A fresh run id: UTC time plus random hex, e.g. `20261122-231500-3fa9c1`.
public func newRunID() -> String {
    var t = time(nil)
    var tm = tm()
    gmtime_r(&t, &tm)
    // Digits by hand, not String(format:): Foundation's formatting is a measurable part of a
    // one-shot `lanes run` (its first use looks up protocol conformances).
    func pad(_ v: Int32, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    let stamp = pad(tm.tm_year + 1900, 4) + pad(tm.tm_mon + 1, 2) + pad(tm.tm_mday, 2) + "-"
        + pad(tm.tm_hour, 2) + pad(tm.tm_min, 2) + pad(tm.tm_sec, 2)
    let random = (0..<3).map { _ in hexByte(UInt8.random(in: 0...255)) }.joined()
    return stamp + "-" + random
}

private func hexByte(_ b: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}
