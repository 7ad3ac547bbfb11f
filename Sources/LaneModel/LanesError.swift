/// An error of Lanes with the stage that failed, the underlying errno when there is one and a
/// message a user can act on. Equality is by code and stage.
public struct LanesError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }
        /// A profile or lane file is invalid.
        public static let invalidConfig = Code("invalid configuration")
        /// A command-line argument is invalid.
        public static let invalidArgument = Code("invalid argument")
        /// A file, profile or lane was not found.
        public static let notFound = Code("not found")
        /// Sandbox set-up failed before the step started.
        public static let setupFailed = Code("setup failed")
        /// A protection the profile asks for cannot be applied on this host.
        public static let unsupported = Code("unsupported")
    }

    public let code: Code
    /// The set-up stage, e.g. "seccomp", "mount /proc", "spawn".
    public let stage: String
    /// The errno behind the failure, if any.
    public let errno: Int32?
    public let message: String

    public init(_ code: Code, stage: String, errno: Int32? = nil, _ message: String) {
        self.code = code
        self.stage = stage
        self.errno = errno
        self.message = message
    }

    public var description: String { "\(stage): \(message)" }

    public static func == (a: LanesError, b: LanesError) -> Bool { a.code == b.code && a.stage == b.stage }
}
