import Foundation
import LaneModel

/// A close record body as written before the result was stored as reported (schema 2 and
/// earlier): read, never written, so older journals keep reading.
struct LegacyClose: Codable, Sendable, Equatable {
    var outcome: String
    /// The exit status `lanes run` returned for it.
    var exitStatus: Int32
    var exitCode: Int32?
    var signal: Int32?
    /// Which limit fired, if one did (e.g. "wall_clock", "output").
    var limit: String?
    var wallMs: Double
    var cpuMs: Double
    var maxRssKb: Int
    /// Captured output, capped and redacted.
    var stdout: Data
    var stderr: Data
    var stdoutTruncated: Bool
    var stderrTruncated: Bool
    var protections: [String]
    var error: String?
    var profile: String
    var profileFingerprint: String

    /// The result it records. `exit_status` was stored; the result computes its own, so an
    /// `exited` status that differs (older records) becomes the exit code.
    var result: StepResult {
        var r = StepResult(lane: "", profile: profile, profileFingerprint: profileFingerprint,
                           outcome: Outcome(rawValue: outcome) ?? .exited, exitCode: exitCode, signal: signal,
                           wallMs: wallMs, cpuMs: cpuMs, maxRssKb: maxRssKb, stdout: Array(stdout), stderr: Array(stderr),
                           stdoutTruncated: stdoutTruncated, stderrTruncated: stderrTruncated, protections: protections,
                           error: error)
        r.limit = limit.flatMap(LimitName.init(rawValue:))
        if r.exitStatus != exitStatus, r.outcome == .exited || r.outcome == .stopped { r.exitCode = exitStatus }
        return r
    }

    enum CodingKeys: String, CodingKey {
        case outcome, signal, limit, stdout, stderr, protections, error, profile
        case exitStatus = "exit_status", exitCode = "exit_code", wallMs = "wall_ms", cpuMs = "cpu_ms"
        case maxRssKb = "max_rss_kb", stdoutTruncated = "stdout_truncated", stderrTruncated = "stderr_truncated"
        case profileFingerprint = "profile_fingerprint"
    }
}
