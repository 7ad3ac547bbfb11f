import CSQLiteConfig
import Crypto
import Foundation
import LaneModel

/// What a step is about to do, committed before the spawn. The fields that say *what* runs are
/// compared on replay (`differences(from:)`); who ran it and when are not.
public struct StepIntent: Codable, Sendable, Equatable {
    public var lane: String
    public var argv: [String]
    /// The working directory (the workspace, absolute).
    public var cwd: String
    /// Names of the environment variables the step gets (profile environment and env credentials).
    public var environment: [String]
    /// Names of the credentials the step gets.
    public var credentials: [String]
    public var profile: String
    /// Hash of the compiled policy; a changed profile changes it.
    public var profileFingerprint: String
    /// The limits in force, by name.
    public var limits: [String: Double]
    /// Which supervisor wrote the intent (not compared).
    public var supervisor: Supervisor
    /// `--idempotent` on this invocation (not compared).
    public var idempotent: Bool

    public init(lane: String, argv: [String], cwd: String, environment: [String], credentials: [String],
                profile: String, profileFingerprint: String, limits: [String: Double],
                supervisor: Supervisor, idempotent: Bool = false) {
        self.lane = lane
        self.argv = argv
        self.cwd = cwd
        self.environment = environment.sorted()
        self.credentials = credentials.sorted()
        self.profile = profile
        self.profileFingerprint = profileFingerprint
        self.limits = limits
        self.supervisor = supervisor
        self.idempotent = idempotent
    }

    /// The names of the fields that say what runs and differ between the two intents.
    public func differences(from other: StepIntent) -> [String] {
        var out: [String] = []
        if lane != other.lane { out.append("lane") }
        if argv != other.argv { out.append("argv") }
        if cwd != other.cwd { out.append("cwd") }
        if environment != other.environment { out.append("environment") }
        if credentials != other.credentials { out.append("credentials") }
        if profile != other.profile { out.append("profile") }
        if profileFingerprint != other.profileFingerprint { out.append("profile_fingerprint") }
        if limits != other.limits { out.append("limits") }
        return out
    }

    enum CodingKeys: String, CodingKey {
        case lane, argv, cwd, environment, credentials, profile, limits, supervisor, idempotent
        case profileFingerprint = "profile_fingerprint"
    }
}

/// The supervisor process that wrote an intent. It is alive when a process with the same pid
/// and the same start time exists on the same boot.
public struct Supervisor: Codable, Sendable, Equatable {
    public var pid: Int32
    /// Field 22 of /proc/PID/stat (clock ticks since boot).
    public var startTime: UInt64
    public var bootID: String
    public var host: String
    /// The file in the state directory's `supervisors/` that this supervisor holds an exclusive
    /// `flock` on while it runs (`SupervisorLock`); nil in records written before it existed.
    public var lock: String?

    public init(pid: Int32, startTime: UInt64, bootID: String, host: String, lock: String? = nil) {
        self.pid = pid
        self.startTime = startTime
        self.bootID = bootID
        self.host = host
        self.lock = lock
    }

    enum CodingKeys: String, CodingKey {
        case pid, host, lock
        case startTime = "start_time"
        case bootID = "boot_id"
    }
}

/// The body of the first record of a run.
public struct RunOpened: Codable, Sendable, Equatable {
    public var lane: String
    public var supervisor: Supervisor
    public init(lane: String, supervisor: Supervisor) {
        self.lane = lane
        self.supervisor = supervisor
    }
}

extension RunOpened {
    /// The lane of a run record as `CanonicalBody.runOpened` writes it (`{"lane":"NAME",…`),
    /// read without a JSON decoder: a new run folds its first record in the same process, where
    /// `JSONDecoder`'s first use cost about 0.3 ms of a one-shot `lanes run` (perf). nil for any
    /// other shape (an escape in the name, another key order): the caller decodes then.
    static func lane(ofCanonical body: String) -> String? {
        let prefix = #"{"lane":""#
        guard body.hasPrefix(prefix) else { return nil }
        let rest = body.utf8.dropFirst(prefix.utf8.count)
        guard let end = rest.firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        let name = rest[rest.startIndex..<end]
        guard !name.contains(UInt8(ascii: "\\")) else { return nil }
        return String(decoding: name, as: UTF8.self)
    }
}

/// One appended record. `body` holds the exact bytes that were hashed (canonical JSON: sorted
/// keys); the hash is never recomputed from a re-encoding.
public struct JournalRecord: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// The run was opened (body: `RunOpened`).
        case run
        /// A step's intent (body: `StepIntent`), committed before the spawn.
        case intent
        /// A step's close (body: `StepResult` plus the seq of the intent it closes).
        case close
        /// A governance decision: an approval requested, approved, denied or expired; the run
        /// halted, resumed or stopped (body: `Decision`, Governance.swift). Who, when and why.
        case decision
    }

    public var run: String
    /// 1, 2, 3 … within the run, without gaps.
    public var seq: Int
    public var kind: Kind
    public var step: String?
    /// Seconds since 1970.
    public var at: Double
    public var body: String
    public var prevHash: String
    public var hash: String

    public init(run: String, seq: Int, kind: Kind, step: String?, at: Double, body: String, prevHash: String, hash: String) {
        self.run = run
        self.seq = seq
        self.kind = kind
        self.step = step
        self.at = at
        self.body = body
        self.prevHash = prevHash
        self.hash = hash
    }

    /// A record chained onto `prevHash`, with its hash computed.
    public static func make(run: String, seq: Int, kind: Kind, step: String?, at: Double, body: String,
                            prevHash: String) -> JournalRecord {
        var r = JournalRecord(run: run, seq: seq, kind: kind, step: step, at: at, body: body, prevHash: prevHash, hash: "")
        r.hash = r.computedHash
        return r
    }

    /// The hash of the first record's predecessor.
    public static let genesis = String(repeating: "0", count: 64)

    /// SHA256(prev_hash ‖ canonical bytes), hex. The canonical bytes are the header fields
    /// (run, seq, kind, step, time with six decimals) and the body, each header field preceded
    /// by a newline. Built without Foundation formatting: it runs for every append.
    public var computedHash: String {
        var bytes = Array(prevHash.utf8)
        bytes += canonicalBytes
        var h = SHA256()
        bytes.withUnsafeBytes { h.update(bufferPointer: $0) }
        return hexString(h.finalize())
    }

    public var canonicalBytes: String.UTF8View {
        let header = "\n" + run + "\n" + seq.description + "\n" + kind.rawValue + "\n" + (step ?? "") + "\n" + Self.sixDecimals(at) + "\n"
        return (header + body).utf8
    }

    /// `at` as C's `%.6f` prints it (what the hashes of existing journals were computed with).
    static func sixDecimals(_ d: Double) -> String {
        var buffer = [CChar](repeating: 0, count: 400)
        let n = buffer.withUnsafeMutableBufferPointer { Int(lane_format_seconds($0.baseAddress, UInt($0.count), d)) }
        return String(decoding: buffer.prefix(max(0, min(n, buffer.count - 1))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The body decoded as `T`.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(body.utf8))
    }

    /// The intent, for an intent record.
    public var intent: StepIntent? { kind == .intent ? try? decode(StepIntent.self) : nil }
    /// The result, for a close record: exactly as the step reported it (older records: as
    /// much of it as they hold). The lane is the run's (empty for older records).
    public var close: StepResult? { kind == .close ? CloseBody.result(body) : nil }
    /// The result's JSON, for a close record: the text the live step reported, stored verbatim.
    public var closeJSON: String? { kind == .close ? CloseBody.resultJSON(body) : nil }
    /// For a close record: the seq of the intent it closes.
    public var closesSeq: Int? { kind == .close ? CloseBody.intentSeq(body) : nil }
}

/// Canonical JSON for record bodies: sorted keys, no escaped slashes.
enum Canonical {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }
}

