/// Something a step tried that the sandbox refused, recorded with the step (`denials` in its
/// result): a system call the seccomp policy refused, a set-id mode, or a write to a protected
/// path. Counted per kind and name, with the first process that tried.
public struct Denial: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// A system call outside the profile's allow-list (answered EPERM in `errno` mode).
        case seccomp
        /// A chmod/open/mkdir/mknod mode with S_ISUID or S_ISGID (answered EPERM).
        case setidBit = "setid_bit"
        /// A protected workspace path the step created or replaced (quarantined after the step).
        case protectedPath = "protected_path"
    }
    public var kind: Kind
    /// The system call's name, or the workspace-relative path.
    public var name: String
    public var count: Int
    /// The first process that tried: its pid in the sandbox and its command name (nil when the
    /// denial was found after the step, for protected paths).
    public var firstPid: Int32?
    public var firstProcess: String?

    public init(kind: Kind, name: String, count: Int = 1, firstPid: Int32? = nil, firstProcess: String? = nil) {
        self.kind = kind
        self.name = name
        self.count = count
        self.firstPid = firstPid
        self.firstProcess = firstProcess
    }

    /// The names `halt_on` can use for this denial: its kind's umbrella name
    /// (`seccomp_violation`, `setid_bit`, `protected_path`) and `denied:NAME` for the exact call
    /// or path (`denied:ptrace`, `denied:.git/hooks`).
    public var haltNames: [String] {
        let umbrella = kind == .seccomp ? "seccomp_violation" : kind.rawValue
        return [umbrella, "denied:" + name]
    }

    /// One line for the journal and `lanes show`: "seccomp ptrace ×2 (first: pid 4 strace)".
    public var summary: String {
        var s = "\(kind.rawValue) \(name) ×\(count)"
        if let firstPid { s += " (first: pid \(firstPid)\(firstProcess.map { " " + $0 } ?? ""))" }
        return s
    }

    /// The form the journal keeps: kind, name, count, first pid, first process, tab-separated
    /// (tabs and newlines in the name or process are replaced by spaces).
    public var encoded: String {
        func clean(_ s: String) -> String { String(s.map { $0 == "\t" || $0 == "\n" ? " " : $0 }) }
        return [kind.rawValue, clean(name), String(count), firstPid.map(String.init) ?? "", clean(firstProcess ?? "")]
            .joined(separator: "\t")
    }

    /// Reads `encoded`; nil for anything else.
    public init?(encoded: String) {
        let f = encoded.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard f.count == 5, let kind = Kind(rawValue: f[0]), let count = Int(f[2]) else { return nil }
        self.init(kind: kind, name: f[1], count: count, firstPid: Int32(f[3]), firstProcess: f[3].isEmpty ? nil : f[4])
    }

    public var jsonValue: JSONValue {
        var o = JSONObject()
        o.add("kind", .string(kind.rawValue))
        o.add("name", .string(name))
        o.add("count", .int(count))
        o.add("first_pid", firstPid.map { .int(Int($0)) } ?? .null)
        o.add("first_process", firstProcess.map { .string($0) } ?? .null)
        return .object(o)
    }
}

extension StepResult {
    /// The `halt_on` names this result triggers: its outcome, and for every denial its kind's
    /// umbrella name and `denied:NAME`. A refused call in `errno` mode thus halts a lane with
    /// `halt_on = ["seccomp_violation"]` although the step itself exited. Pure, so governance can
    /// call it wherever it folds a close record.
    public var haltNames: [String] {
        var names = [outcome.rawValue]
        for d in denials { for n in d.haltNames where !names.contains(n) { names.append(n) } }
        return names
    }

    /// Which of a lane's `halt_on` entries this result fires, in the lane's order.
    public func haltTriggers(_ haltOn: [String]) -> [String] {
        let names = Set(haltNames)
        return haltOn.filter { names.contains($0) }
    }
}
