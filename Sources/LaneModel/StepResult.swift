/// What happened to one step: the outcome, the numbers, the captured output.
public struct StepResult: Sendable, Equatable {
    public var lane: String
    public var profile: String
    public var profileFingerprint: String
    public var outcome: Outcome
    /// The tool's exit code when it exited.
    public var exitCode: Int32?
    /// The signal that ended it, when one did.
    public var signal: Int32?
    public var wallMs: Double
    public var cpuMs: Double
    public var maxRssKb: Int
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool
    /// The protections that were applied, by name.
    public var protections: [String]
    /// For `failed_to_start`: the stage and the reason.
    public var error: String?
    /// The limit that ended or failed the step, if one did (`limit` in the JSON).
    public var limit: LimitName?
    /// Every limit the step ran into (a fork bomb hits pids, then the wall clock).
    public var limitsHit: [LimitName] = []
    /// cgroup limits the profile marked optional that this host could not enforce.
    public var limitsNotApplied: [String] = []
    /// The cgroup backend the step ran under ("v1", "v2"), nil without a cgroup.
    public var cgroup: String?
    /// From the step's cgroup: peak memory, CPU time of all its processes, most tasks at once.
    public var memoryPeakBytes: UInt64?
    public var cgroupCpuMs: Double?
    public var pidsPeak: UInt64?
    /// For `refused`: why (the exit status follows from it).
    public var reason: RefusalReason?
    /// What the sandbox refused the step (seccomp, set-id modes, protected paths), first seen
    /// first. `halt_on` can name them (`haltNames`).
    public var denials: [Denial] = []
    /// Protected paths the lane unprotected, with the lane's reason (`path: reason`).
    public var unprotected: [String] = []
    /// The host identity the step's processes ran as ("uid:gid"), when `lanes` ran as root.
    public var hostIdentity: String?
    /// The step's change set (filesystem.commit = auto or review); nil under direct.
    public var changes: StepChanges?
    /// Proxy mode (issue 12): every connection attempt through the step's egress proxy.
    public var network: NetworkRecord?
    /// Who asked for the step when a front door knows (`lanes mcp --listen`: the unix socket
    /// peer, "pid=… uid=… gid=…"); rendered only when set.
    public var requester: String?

    public init(lane: String, profile: String, profileFingerprint: String, outcome: Outcome,
                exitCode: Int32? = nil, signal: Int32? = nil, wallMs: Double = 0, cpuMs: Double = 0,
                maxRssKb: Int = 0, stdout: [UInt8] = [], stderr: [UInt8] = [], stdoutTruncated: Bool = false,
                stderrTruncated: Bool = false, protections: [String] = [], error: String? = nil) {
        self.lane = lane
        self.profile = profile
        self.profileFingerprint = profileFingerprint
        self.outcome = outcome
        self.exitCode = exitCode
        self.signal = signal
        self.wallMs = wallMs
        self.cpuMs = cpuMs
        self.maxRssKb = maxRssKb
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
        self.protections = protections
        self.error = error
    }

    /// The exit status of `lanes run` for this result (see `ExitStatus`).
    public var exitStatus: Int32 {
        switch outcome {
        case .exited: return exitCode ?? 0
        case .signaled, .seccompViolation: return ExitStatus.signaled(signal ?? 9)
        // 81 when `lanes stop` (or halt_on) ended it (set as the exit code); 130/143 when lanes
        // itself got SIGINT/SIGTERM from its caller.
        case .stopped: return exitCode ?? ExitStatus.signaled(signal ?? 9)
        case .refused: return reason?.exitStatus ?? exitCode ?? ExitStatus.failedToStart
        case .timedOut: return ExitStatus.timedOut
        case .oomKilled: return ExitStatus.oomKilled
        case .cpuTimeExceeded: return ExitStatus.cpuTimeExceeded
        // The status the step had anyway: its exit code, 128+N, or 124 when the deadline ended it.
        case .pidsLimited: return signal.map(ExitStatus.signaled) ?? exitCode ?? ExitStatus.timedOut
        case .failedToStart: return exitCode ?? ExitStatus.failedToStart
        }
    }

    /// A refusal: nothing ran. `message` says why in words, `reason` for a program.
    public static func refused(lane: String, profile: String = "", profileFingerprint: String = "",
                               reason: RefusalReason, message: String) -> StepResult {
        var r = StepResult(lane: lane, profile: profile, profileFingerprint: profileFingerprint, outcome: .refused,
                           exitCode: reason.exitStatus, error: message)
        r.reason = reason
        return r
    }

    /// The result as its JSON states it: times to the microsecond (what the journal stores and
    /// a replay reads back, so folds of live and recorded results agree).
    public var asReported: StepResult {
        var r = self
        r.wallMs = JSONValue.reported(wallMs)
        r.cpuMs = JSONValue.reported(cpuMs)
        r.cgroupCpuMs = cgroupCpuMs.map(JSONValue.reported)
        return r
    }

    /// The result as one JSON object (documented in docs/step-result.schema.json). Every field is
    /// always present, null when it does not apply, so a refusal and a run have one shape.
    public func json() -> String {
        var o = JSONObject()
        o.add("lane", .string(lane))
        o.add("profile", .string(profile))
        o.add("profile_fingerprint", .string(profileFingerprint))
        o.add("outcome", .string(outcome.rawValue))
        o.add("exit_status", .int(Int(exitStatus)))
        o.add("exit_code", exitCode.map { .int(Int($0)) } ?? .null)
        o.add("signal", signal.map { .int(Int($0)) } ?? .null)
        o.add("wall_ms", .double(wallMs))
        o.add("cpu_ms", .double(cpuMs))
        o.add("max_rss_kb", .int(maxRssKb))
        o.add("stdout", .string(String(decoding: stdout, as: UTF8.self)))
        o.add("stdout_truncated", .bool(stdoutTruncated))
        o.add("stderr", .string(String(decoding: stderr, as: UTF8.self)))
        o.add("stderr_truncated", .bool(stderrTruncated))
        o.add("protections", .array(protections.map { .string($0) }))
        o.add("error", error.map { .string($0) } ?? .null)
        o.add("reason", reason.map { .string($0.rawValue) } ?? .null)
        o.add("limit", limit.map { .string($0.rawValue) } ?? .null)
        o.add("limits_hit", .array(limitsHit.map { .string($0.rawValue) }))
        o.add("limits_not_applied", .array(limitsNotApplied.map { .string($0) }))
        o.add("cgroup", cgroup.map { .string($0) } ?? .null)
        o.add("memory_peak_bytes", memoryPeakBytes.map { .int(Int(clamping: $0)) } ?? .null)
        o.add("cgroup_cpu_ms", cgroupCpuMs.map { .double($0) } ?? .null)
        o.add("pids_peak", pidsPeak.map { .int(Int(clamping: $0)) } ?? .null)
        o.add("denials", .array(denials.map(\.jsonValue)))
        o.add("unprotected", .array(unprotected.map { .string($0) }))
        o.add("host_identity", hostIdentity.map { .string($0) } ?? .null)
        o.add("changes", changes.map { $0.json() } ?? .null)
        o.add("network", network.map { $0.json() } ?? .null)
        o.add("requester", requester.map { .string($0) } ?? .null)
        return o.rendered
    }
}
