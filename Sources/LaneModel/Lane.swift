/// A named execution lane: a profile bound to an owner and a workspace, the credentials its
/// steps get, whether a step left in doubt may be run again, its review gates, budgets and the
/// outcomes that stop a run (LaneGovernance.swift).
public struct Lane: Sendable, Equatable {
    public var name: String
    public var description: String
    /// Who answers for what runs in this lane (a person or a team).
    public var owner: String
    /// The profile's name.
    public var profile: String
    /// The default workspace (absolute); `nil` means the current directory.
    public var workspace: String?
    /// Workspace-relative directories bound read-write even when the profile's workspace is
    /// read-only (for example an extraction lane's output directory). Created when missing.
    public var writable: [String]
    /// What happens to a step whose supervisor died between its intent and its close record.
    public var retry: Retry
    /// `socket_group`: the group that may connect to `lanes mcp --listen unix:PATH` for this lane
    /// (the socket is then 0660 and owned by it; without it, 0600).
    public var socketGroup: String?
    /// The credentials every step of this lane gets, sorted by name. Nothing else passes.
    public var credentials: [Credential]
    /// `[review]`: which steps wait for a person's approval.
    public var review: Review = Review()
    /// `[budget]`: what one run may spend before it halts.
    public var budget: Budget = Budget()
    /// `[unprotect]`: protected paths (of the profile's `filesystem.protected`) this lane may
    /// write, each with the reason, which every step's result records.
    public var unprotected: [String: String] = [:]
    /// Step outcomes that make the run unsafe: the run is stopped (`halt_on = ["seccomp_violation"]`).
    public var haltOn: [String] = []
    /// Workspace-relative directories kept direct (bound) when the profile's commit is auto or
    /// review, so builds do not pay for copies (`writable_direct`, docs/filesystem.md).
    public var writableDirect: [String] = []
    /// The most bytes of pre-images one applied change set keeps for `lanes revert`
    /// (`max_undo_bytes`); a larger change set is applied but cannot be reverted.
    public var maxUndoBytes: UInt64 = 256 << 20
    /// `[network] allow`: host patterns this lane adds to its profile's allow-list (only
    /// meaningful with a profile whose `[network] mode = "proxy"`).
    public var networkAllow: [EgressRule] = []

    public init(name: String, description: String, owner: String, profile: String,
                workspace: String? = nil, writable: [String] = [], retry: Retry = .never,
                credentials: [Credential] = []) {
        self.name = name
        self.description = description
        self.owner = owner
        self.profile = profile
        self.workspace = workspace
        self.writable = writable
        self.retry = retry
        self.credentials = credentials
    }

    /// `retry = "safe"`: the lane's steps are read-only or idempotent, so a step left in doubt
    /// by a dead supervisor is simply run again. `never` (the default): it waits for review.
    public enum Retry: String, Sendable, Equatable { case never, safe }

    /// One credential a lane grants: `NAME = { from = "secret:x", as = "env" }`.
    public struct Credential: Sendable, Equatable {
        /// Where the value comes from.
        public enum Source: Sendable, Equatable, CustomStringConvertible {
            /// A secret in the state directory's store (`lanes secret set NAME`).
            case secret(String)
            /// A variable of the supervisor's own environment.
            case environment(String)
            /// A host file, read by the supervisor.
            case file(String)

            public var description: String {
                switch self {
                case let .secret(n): return "secret:" + n
                case let .environment(n): return "env:" + n
                case let .file(p): return "file:" + p
                }
            }

            /// Parses `secret:NAME`, `env:VAR` or `file:/ABS/PATH`; nil when it is none of them.
            public static func parse(_ text: String) -> Source? {
                guard let colon = text.firstIndex(of: ":") else { return nil }
                let kind = text[..<colon], rest = String(text[text.index(after: colon)...])
                guard !rest.isEmpty else { return nil }
                switch kind {
                case "secret": return isSecretName(rest) ? .secret(rest) : nil
                case "env": return isVariableName(rest) ? .environment(rest) : nil
                case "file": return rest.hasPrefix("/") ? .file(rest) : nil
                default: return nil
                }
            }
        }
        /// How the step sees it.
        public enum Delivery: String, Sendable, Equatable {
            /// An environment variable NAME.
            case env
            /// A file `/run/lanes/credentials/NAME`, mode 0400, on a private tmpfs.
            case file
        }

        /// The variable or file name inside the sandbox (also the name used in redactions).
        public var name: String
        public var source: Source
        public var delivery: Delivery

        public init(name: String, source: Source, delivery: Delivery) {
            self.name = name
            self.source = source
            self.delivery = delivery
        }

        /// Where file credentials appear inside the sandbox.
        public static let directory = "/run/lanes/credentials"

        /// A valid environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
        public static func isVariableName(_ s: String) -> Bool {
            guard let first = s.unicodeScalars.first, first == "_" || isLetter(first) else { return false }
            return s.unicodeScalars.allSatisfy { $0 == "_" || isLetter($0) || ("0"..."9").contains($0) }
        }

        /// A valid secret name: 1–64 of `[A-Za-z0-9._-]`, not starting with a dot.
        public static func isSecretName(_ s: String) -> Bool {
            guard !s.isEmpty, s.count <= 64, !s.hasPrefix(".") else { return false }
            return s.unicodeScalars.allSatisfy { isLetter($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "_" || $0 == "-" }
        }

        private static func isLetter(_ u: Unicode.Scalar) -> Bool { ("a"..."z").contains(u) || ("A"..."Z").contains(u) }
    }
}
