import LaneModel

/// One step to run: a lane, its profile, the command and where.
public struct StepRequest: Sendable {
    public var lane: Lane
    public var profile: Profile
    /// The command and its arguments.
    public var argv: [String]
    /// The workspace: an absolute, symlink-free path to a directory.
    public var workspace: String
    /// Overrides the profile's wall-clock limit (seconds).
    public var timeoutSeconds: Double?
    /// Capture output for a JSON result instead of relaying it.
    public var captureOutput: Bool
    /// Host directories that must never be visible in the sandbox, even when they lie inside the
    /// workspace (the config directory, the state directory, the directory of the binaries).
    public var hiddenPaths: [String]

    public init(lane: Lane, profile: Profile, argv: [String], workspace: String,
                timeoutSeconds: Double? = nil, captureOutput: Bool = false, hiddenPaths: [String] = []) {
        self.lane = lane
        self.profile = profile
        self.argv = argv
        self.workspace = workspace
        self.timeoutSeconds = timeoutSeconds
        self.captureOutput = captureOutput
        self.hiddenPaths = hiddenPaths
    }

    /// The deadline in force.
    public var wallSeconds: Double { timeoutSeconds ?? profile.limits.wallSeconds }
}
