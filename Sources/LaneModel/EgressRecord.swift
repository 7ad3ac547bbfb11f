/// One connection attempt through a step's egress proxy (issue 12): what was asked, what was
/// decided and by which rule, and what moved.
public struct EgressConnection: Sendable, Equatable {
    /// The host the step asked for (a name or an IP literal), as it asked.
    public var host: String
    public var port: UInt16
    /// The address the proxy connected to (or refused), when it got that far.
    public var address: String?
    /// The allow rule that let it through, or why it was denied (the deny rule, "no allow rule
    /// in lane NAME", a private address, an SNI mismatch, a limit).
    public var rule: String
    public var allowed: Bool
    /// How the step asked: "connect" (HTTP CONNECT), "http" (plain HTTP proxying) or "socks5".
    public var via: String
    /// Bytes from the step to the host, and from the host to the step.
    public var bytesOut: UInt64
    public var bytesIn: UInt64
    public var durationMs: Double
    /// For an allowed connection that failed (refused, unreachable, cut at a byte cap).
    public var error: String?

    public init(host: String, port: UInt16, address: String? = nil, rule: String, allowed: Bool, via: String,
                bytesOut: UInt64 = 0, bytesIn: UInt64 = 0, durationMs: Double = 0, error: String? = nil) {
        self.host = host
        self.port = port
        self.address = address
        self.rule = rule
        self.allowed = allowed
        self.via = via
        self.bytesOut = bytesOut
        self.bytesIn = bytesIn
        self.durationMs = durationMs
        self.error = error
    }

    /// `host:port` with IPv6 literals in brackets.
    public var endpoint: String { (host.contains(":") ? "[\(host)]" : host) + ":\(port)" }

    /// The one stderr line a denial prints.
    public var denialLine: String { "lanes: egress denied: \(endpoint) (\(rule))" }

    func json() -> JSONValue {
        var o = JSONObject()
        o.add("host", .string(host))
        o.add("port", .int(Int(port)))
        o.add("address", address.map { .string($0) } ?? .null)
        o.add("rule", .string(rule))
        o.add("via", .string(via))
        o.add("bytes_out", .int(Int(clamping: bytesOut)))
        o.add("bytes_in", .int(Int(clamping: bytesIn)))
        o.add("duration_ms", .double(durationMs))
        if let error { o.add("error", .string(error)) }
        return .object(o)
    }
}

/// Everything a step did on the network through its proxy.
public struct NetworkRecord: Sendable, Equatable {
    /// Allowed connections (in the order they ended), at most `EgressLimits.recordsKept`.
    public var connections: [EgressConnection]
    /// Denied attempts, at most `EgressLimits.recordsKept`.
    public var denied: [EgressConnection]
    /// Attempts beyond the kept records (counted, not listed: the supervisor's memory is bounded).
    public var omitted: Int
    /// Totals over every attempt, listed or not.
    public var attempts: Int
    public var deniedCount: Int
    public var bytesOut: UInt64
    public var bytesIn: UInt64

    public init(connections: [EgressConnection] = [], denied: [EgressConnection] = [], omitted: Int = 0,
                attempts: Int = 0, deniedCount: Int = 0, bytesOut: UInt64 = 0, bytesIn: UInt64 = 0) {
        self.connections = connections
        self.denied = denied
        self.omitted = omitted
        self.attempts = attempts
        self.deniedCount = deniedCount
        self.bytesOut = bytesOut
        self.bytesIn = bytesIn
    }

    /// Bytes both ways: what `max_egress_bytes` counts.
    public var egressBytes: UInt64 { bytesOut &+ bytesIn }

    func json() -> JSONValue {
        var o = JSONObject()
        o.add("connections", .array(connections.map { $0.json() }))
        o.add("denied", .array(denied.map { $0.json() }))
        o.add("omitted", .int(omitted))
        o.add("attempts", .int(attempts))
        o.add("denied_count", .int(deniedCount))
        o.add("bytes_out", .int(Int(clamping: bytesOut)))
        o.add("bytes_in", .int(Int(clamping: bytesIn)))
        return .object(o)
    }
}

/// Governance over egress, as pure functions the journal's evaluator calls (issue 12):
/// `halt_on = ["egress_denied"]` and the budget key `max_egress_bytes`.
public enum EgressGovernance {
    /// The outcome name `halt_on` uses for a step with at least one denied attempt.
    public static let deniedOutcome = "egress_denied"
    /// The budget key counting bytes both ways through the proxy, across the run.
    public static let budgetKey = "max_egress_bytes"

    /// The extra outcomes a closed step adds to the run's state (for `halt_on`), from its count
    /// of denied attempts (`NetworkRecord.deniedCount`; nil without proxy mode).
    public static func outcomes(deniedCount: Int?) -> [String] {
        (deniedCount ?? 0) > 0 ? [deniedOutcome] : []
    }

    /// What a closed step adds to the run's `max_egress_bytes` usage (`NetworkRecord.egressBytes`).
    public static func usage(bytes: UInt64?) -> Double { Double(bytes ?? 0) }
}
